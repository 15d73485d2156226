import { createHash } from 'node:crypto';
import type { AppContext } from '../app-context';
import { getAppContext } from '../app-context';
import { whenRedisReady } from '../redis-ready';
import { USAGE_SPOOL_CONTAINER } from '../usage-spool';
import { windowId as windowIdOf, windowStart } from '../usage';
import { WindowAggregator } from './aggregate';
import { buildReport } from './allocation';
import { faultPoint } from './faults';
import type { ReportPeriod } from './model';
import { loadPriceTable } from './prices';
import { writeReport } from './report-store';
import type { BatchRecord } from './store';
import { batchPartition, batchRecordId, ChargebackStore } from './store';
import type { WindowBatch } from './usage-batches';
import { UsageBatches } from './usage-batches';

/** The activities of a chargeback run (see functions/chargeback/chargeback.ts). */

export const CHARGEBACK_ORCHESTRATION = 'chargebackRun';
export const QUARANTINE_CONTAINER = 'usage-quarantine';

export interface WindowOutcome extends WindowBatch {
  month: string;
  day: string;
  events: number;
  invalidEvents: number;
  aggregates: number;
}

export interface PeriodRef {
  kind: 'month' | 'day';
  id: string;
}

export interface ChargebackRunSummary {
  asOf: string;
  windows: Array<{ windowId: string; batch: string; events: number }>;
  events: number;
  invalidEvents: number;
  aggregates: number;
  reports: string[];
}

/** The run of a quarter hour: `chargeback-<window id>` of the slot the timer fired in. */
export function runInstanceId(at: Date): string {
  return `chargeback-${windowIdOf(windowStart(at))}`;
}

interface Services {
  app: AppContext;
  batches: UsageBatches;
  store: ChargebackStore;
}

async function services(): Promise<Services> {
  const app = await getAppContext();
  const redis = app.redis();
  // The app's client does not queue commands while it connects (the proxy must fail fast).
  if (redis.status !== 'ready') await whenRedisReady(redis, AbortSignal.timeout(10_000));
  return {
    app,
    batches: new UsageBatches(redis, app.blobService().getContainerClient(USAGE_SPOOL_CONTAINER)),
    store: new ChargebackStore(app.cosmos(), app.config.cosmos.database),
  };
}

export async function findPendingWindows(asOf: Date): Promise<string[]> {
  await faultPoint('find');
  const { app, batches } = await services();
  return batches.pendingWindows(asOf, app.config.chargeback.graceMs);
}

/**
 * Claims a window's raw usage into its batch, aggregates and prices it, and commits the rows and
 * the batch record to Cosmos DB. Events that fail the usage schema are copied to the quarantine
 * container (by content hash, idempotent) and counted, never silently dropped.
 */
export async function aggregateWindow(windowId: string, proposedBatch: string): Promise<WindowOutcome> {
  await faultPoint('aggregate');
  const { app, batches, store } = await services();
  const batch = await batches.claim(windowId, proposedBatch);
  const { prices } = await store.containers();
  const table = await loadPriceTable(prices);
  const aggregator = new WindowAggregator(batch, (model, meter, at) => table.priceFor(model, meter, at));
  for await (const page of batches.read(batch)) for (const raw of page) aggregator.add(raw);
  if (aggregator.invalid.length > 0) {
    const quarantine = app.blobService().getContainerClient(QUARANTINE_CONTAINER);
    await quarantine.createIfNotExists();
    for (const { raw, problem } of aggregator.invalid) {
      const name = `${windowId}/${batch.batch}/${createHash('sha256').update(raw).digest('hex')}.json`;
      await quarantine.getBlockBlobClient(name).upload(raw, Buffer.byteLength(raw), {
        metadata: { problem: problem.slice(0, 1000).replace(/[^\x20-\x7e]/g, '?') },
        blobHTTPHeaders: { blobContentType: 'application/json' },
      });
    }
    console.error(
      `CHARGEBACK_INVALID_EVENTS ${aggregator.invalid.length} in window ${windowId} batch ${batch.batch}: quarantined in ${QUARANTINE_CONTAINER}.`,
    );
  }
  const rows = aggregator.aggregates();
  const start = rows[0]?.windowStart ?? windowStartIso(windowId);
  const record: BatchRecord = {
    id: batchRecordId(batch),
    pk: batchPartition(start.slice(0, 7)),
    type: 'batch',
    windowId,
    batch: batch.batch,
    windowStart: start,
    windowEnd: new Date(new Date(start).getTime() + 15 * 60_000).toISOString(),
    month: start.slice(0, 7),
    day: start.slice(0, 10),
    events: aggregator.events,
    invalidEvents: aggregator.invalid.length,
    aggregates: rows.length,
  };
  await store.commit(rows, record);
  await faultPoint('aggregate:committed');
  return {
    ...batch,
    month: record.month,
    day: record.day,
    events: record.events,
    invalidEvents: record.invalidEvents,
    aggregates: rows.length,
  };
}

function windowStartIso(windowId: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z$/.exec(windowId);
  if (!m) throw new Error(`'${windowId}' is not a window id`);
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:00.000Z`;
}

/** The months and days a run's windows touch, each once, in order. */
export function periodsOf(outcomes: Array<Pick<WindowOutcome, 'month' | 'day'>>): PeriodRef[] {
  const months = [...new Set(outcomes.map((o) => o.month))].sort();
  const days = [...new Set(outcomes.map((o) => o.day))].sort();
  return [
    ...months.map((id) => ({ kind: 'month' as const, id })),
    ...days.map((id) => ({ kind: 'day' as const, id })),
  ];
}

export function reportPeriod(ref: PeriodRef): ReportPeriod {
  if (ref.kind === 'month') {
    const [y, m] = ref.id.split('-').map(Number) as [number, number];
    return {
      kind: 'month',
      id: ref.id,
      start: new Date(Date.UTC(y, m - 1, 1)).toISOString(),
      end: new Date(Date.UTC(y, m, 1)).toISOString(),
    };
  }
  const start = new Date(`${ref.id}T00:00:00.000Z`);
  return {
    kind: 'day',
    id: ref.id,
    start: start.toISOString(),
    end: new Date(start.getTime() + 86_400_000).toISOString(),
  };
}

/**
 * Recomputes one period's report from what Cosmos DB holds and writes its files. A pure function
 * of the committed rows, the batches and the configuration: a rerun writes identical bytes.
 */
export async function writePeriodReports(ref: PeriodRef): Promise<string[]> {
  await faultPoint('report');
  const { app, store } = await services();
  const period = reportPeriod(ref);
  const month = ref.id.slice(0, 7);
  const [rows, batches] = await Promise.all([
    store.usage(ref.kind === 'month' ? { month } : { month, day: ref.id }),
    store.batches(month),
  ]);
  // How far the period's data reaches: the end of its last committed window.
  const inPeriod = batches.filter((b) => b.windowStart >= period.start && b.windowStart < period.end);
  const dataThrough = inPeriod.reduce(
    (latest, b) => (b.windowEnd > latest ? b.windowEnd : latest),
    period.start,
  );
  const report = buildReport({ period, aggregates: rows, config: app.config.chargeback.config, dataThrough });
  const container = app.blobService().getContainerClient(app.config.storage.reportsContainer);
  await container.createIfNotExists();
  return writeReport(container, report);
}

export async function releaseBatch(batch: WindowBatch): Promise<void> {
  await faultPoint('release');
  const { batches } = await services();
  await batches.release(batch);
}
