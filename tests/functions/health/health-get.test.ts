import type { LocalStack } from '../../../local/stack';
import type { HealthReport } from '../../../shared/adapters/health';
import { startTestStack } from '../../stack';

let stack: LocalStack;
beforeAll(async () => {
  stack = await startTestStack();
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

async function health(): Promise<{ status: number; report: HealthReport }> {
  const res = await fetch(`${stack.host.url}/api/health`);
  expect(res.headers.get('cache-control')).toBe('no-store');
  return { status: res.status, report: (await res.json()) as HealthReport };
}

describe('GET /api/health', () => {
  it('answers 200 with every dependency healthy when the stack is up', async () => {
    const { status, report } = await health();
    expect(report.dependencies).toEqual({
      azureOpenAI: { status: 'healthy', latencyMs: expect.any(Number) },
      azureSpeech: { status: 'healthy', latencyMs: expect.any(Number) },
      blobStorage: { status: 'healthy', latencyMs: expect.any(Number) },
      cosmosDb: { status: 'healthy', latencyMs: expect.any(Number) },
      redis: { status: 'healthy', latencyMs: expect.any(Number) },
    });
    expect(status).toBe(200);
    expect(report.status).toBe('healthy');
  });

  it('answers 503 naming the dependency that is down', async () => {
    const redis = stack.standIns.find((s) => s.name === 'Redis');
    if (!redis?.restart) throw new Error('the test stack has no restartable Redis stand-in');
    await redis.stop();
    try {
      const { status, report } = await health();
      expect(status).toBe(503);
      expect(report.status).toBe('unhealthy');
      expect(report.dependencies.redis?.status).toBe('unhealthy');
      expect(report.dependencies.redis?.reason).toMatch(/unreachable|timeout/);
      expect(report.dependencies.cosmosDb?.status).toBe('healthy');
    } finally {
      await redis.restart();
    }
  });
});

describe('GET /api/health after an outage', () => {
  it('is healthy again once Redis is back', async () => {
    const deadline = Date.now() + 10_000;
    let last = await health();
    while (last.status !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      last = await health();
    }
    expect(last.report.dependencies.redis?.status).toBe('healthy');
    expect(last.status).toBe(200);
  });
});
