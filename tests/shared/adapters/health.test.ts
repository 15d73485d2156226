import { checkHealth, ProbeError } from '../../../shared/adapters/health';

describe('checkHealth', () => {
  it('is healthy only when every probe succeeds, and lists dependencies in a stable order', async () => {
    const report = await checkHealth({ b: () => Promise.resolve(), a: () => Promise.resolve() }, 500);
    expect(report.status).toBe('healthy');
    expect(Object.keys(report.dependencies)).toEqual(['a', 'b']);
    expect(report.dependencies.a).toMatchObject({ status: 'healthy' });
  });

  it('reports a probe that does not answer in time as a timeout and aborts it', async () => {
    let aborted = false;
    const report = await checkHealth(
      {
        slow: (signal) =>
          new Promise<void>((resolve) => {
            signal.addEventListener('abort', () => {
              aborted = true;
              resolve();
            });
          }),
        fast: () => Promise.resolve(),
      },
      50,
    );
    expect(report.status).toBe('unhealthy');
    expect(report.dependencies.slow).toMatchObject({ status: 'unhealthy', reason: 'timeout' });
    expect(report.dependencies.fast?.status).toBe('healthy');
    expect(aborted).toBe(true);
  });

  it('classifies failures without exposing their messages, and hands the error to the logger', async () => {
    const logged: string[] = [];
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:6379'), { code: 'ECONNREFUSED' });
    const report = await checkHealth(
      {
        refused: () => Promise.reject(refused),
        denied: () => Promise.reject(Object.assign(new Error('nope'), { statusCode: 403 })),
        typed: () => Promise.reject(new ProbeError('unauthorized', 'bad key')),
        odd: () => Promise.reject(new Error('something else')),
      },
      500,
      (name) => logged.push(name),
    );
    expect(report.dependencies).toMatchObject({
      refused: { reason: 'unreachable' },
      denied: { reason: 'unauthorized' },
      typed: { reason: 'unauthorized' },
      odd: { reason: 'error' },
    });
    expect(JSON.stringify(report)).not.toContain('10.0.0.5');
    expect(logged.sort()).toEqual(['denied', 'odd', 'refused', 'typed']);
  });
});
