import type { LocalStack } from '../../../local/stack';
import type { HealthReport } from '../../../shared/adapters/health';
import { READINESS_CACHE_MS } from '../../../functions/health/health-get';
import { startTestStack } from '../../stack';

let stack: LocalStack;
beforeAll(async () => {
  stack = await startTestStack();
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

async function health(): Promise<{ status: number; report: HealthReport }> {
  const res = await fetch(`${stack.host.url}/api/health`, {
    headers: { 'x-functions-key': stack.settings.LOCAL_FUNCTION_KEY },
  });
  expect(res.headers.get('cache-control')).toBe('no-store');
  return { status: res.status, report: (await res.json()) as HealthReport };
}

/** Requests the Azure OpenAI stand-in has served: the readiness probe calls it once per check. */
function upstreamCalls(): number {
  const openai = stack.openAiSimulator;
  if (!openai) throw new Error('the test stack has no Azure OpenAI simulator');
  return openai.stats.requests;
}

/** Polls readiness (cached for a few seconds) until it answers `status`, for at most 15 s. */
async function healthUntil(status: number): Promise<{ status: number; report: HealthReport }> {
  const deadline = Date.now() + 15_000;
  let last = await health();
  while (last.status !== status && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    last = await health();
  }
  return last;
}

describe('GET /api/live', () => {
  it('answers 200 to anyone and calls no dependency', async () => {
    const before = upstreamCalls();
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${stack.host.url}/api/live`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'alive' });
    }
    expect(upstreamCalls()).toBe(before);
  });
});

describe('GET /api/health', () => {
  it('needs the function key', async () => {
    expect((await fetch(`${stack.host.url}/api/health`)).status).toBe(401);
  });

  it('is checked at most once per few seconds, however many callers ask at once', async () => {
    await new Promise((r) => setTimeout(r, READINESS_CACHE_MS)); // past any cached check
    const before = upstreamCalls();
    const answers = await Promise.all(Array.from({ length: 20 }, () => health()));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(new Set(answers.map((a) => a.report.checkedAt)).size).toBe(1);
    expect(upstreamCalls() - before).toBe(1);
  });

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
      const { status, report } = await healthUntil(503);
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
    const last = await healthUntil(200);
    expect(last.report.dependencies.redis?.status).toBe('healthy');
    expect(last.status).toBe(200);
  });
});
