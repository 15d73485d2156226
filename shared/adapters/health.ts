/**
 * Dependency health: each probe runs in parallel under a time limit. Reasons are coarse on purpose
 * (the endpoint is anonymous); the full error goes to the log.
 */
export type Probe = (signal: AbortSignal) => Promise<void>;

export type HealthReason = 'timeout' | 'unreachable' | 'unauthorized' | 'error';

export interface DependencyHealth {
  status: 'healthy' | 'unhealthy';
  latencyMs: number;
  reason?: HealthReason;
}

export interface HealthReport {
  status: 'healthy' | 'unhealthy';
  checkedAt: string;
  dependencies: Record<string, DependencyHealth>;
}

export class ProbeError extends Error {
  constructor(
    readonly reason: HealthReason,
    message: string,
  ) {
    super(message);
    this.name = 'ProbeError';
  }
}

export async function checkHealth(
  probes: Record<string, Probe>,
  timeoutMs: number,
  onFailure: (dependency: string, error: unknown) => void = () => undefined,
): Promise<HealthReport> {
  const entries = await Promise.all(
    Object.entries(probes).map(async ([name, probe]): Promise<[string, DependencyHealth]> => {
      const started = performance.now();
      const controller = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(new ProbeError('timeout', `no answer within ${timeoutMs} ms`));
          controller.abort();
        }, timeoutMs);
      });
      try {
        await Promise.race([probe(controller.signal), timeout]);
        return [name, { status: 'healthy', latencyMs: elapsed(started) }];
      } catch (error) {
        onFailure(name, error);
        return [name, { status: 'unhealthy', latencyMs: elapsed(started), reason: classify(error) }];
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const dependencies = Object.fromEntries(entries.sort(([a], [b]) => a.localeCompare(b)));
  const healthy = entries.every(([, d]) => d.status === 'healthy');
  return { status: healthy ? 'healthy' : 'unhealthy', checkedAt: new Date().toISOString(), dependencies };
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}

function classify(error: unknown): HealthReason {
  if (error instanceof ProbeError) return error.reason;
  const code = (error as { code?: unknown } | undefined)?.code;
  const status = (error as { statusCode?: unknown } | undefined)?.statusCode;
  if (status === 401 || status === 403) return 'unauthorized';
  if (typeof code === 'string' && /ECONNREFUSED|ENOTFOUND|ECONNRESET|EHOSTUNREACH|ETIMEDOUT/.test(code)) {
    return 'unreachable';
  }
  const message = error instanceof Error ? error.message : String(error);
  if (/ECONNREFUSED|ENOTFOUND|connect|closed|Connection is closed|Stream isn't writeable/i.test(message)) {
    return 'unreachable';
  }
  return 'error';
}
