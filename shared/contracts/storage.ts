/**
 * Where the app keeps its data: the Blob containers, the Cosmos DB database and containers with
 * their partition keys. The deployment creates them and the local stack creates them on start;
 * the app creates only missing Blob containers, once at start-up, and never a Cosmos DB container.
 * The deployment templates are to be checked against this module by tests.
 */

export const BLOB_CONTAINERS = {
  /** Chargeback reports for finance; kept. The name can be changed with REPORTS_CONTAINER. */
  reports: 'reports',
  /** Usage events Redis could not take, one blob per event; released after their window's commit. */
  usageSpool: 'usage-spool',
  /** Raw events that failed the usage schema, kept aside for inspection; expire. */
  usageQuarantine: 'usage-quarantine',
} as const;

export const COSMOS_DATABASE = 'chargeback';

/**
 * Container `usage`, partition key `/pk` = `<YYYY-MM>|<department>`: finance reads a month (or a
 * day of it), either for one department (one logical partition) or for all of them (one query
 * fanning out over the departments, a handful of partitions). A logical partition holds one
 * department's month, far below the 20 GB limit (its size grows with windows × apps × models ×
 * meters, never with requests), and a run's writes spread over its departments. Documents, by `type`:
 * - `usage`: a window batch's aggregated rows, in the department's partition;
 * - `daily`: a day's roll-up of those rows (what reports read), in the same partition;
 * - `batch`: a committed batch's record, in partition `<YYYY-MM>|~batches`;
 * - `day` and `receipt`: which days have usage and which reports are up to date, in partition
 *   `~ledger` (two small documents per day: a few hundred a year).
 *
 * Container `prices`, partition key `/model`: the admins' price overrides, and the audit records
 * of their changes (`type: 'audit'`), each in its price's partition so that a change and its
 * audit record are written in one transactional batch.
 *
 * Container `configuration`, partition key `/pk`: the chargeback configuration the admin API
 * maintains (one document, `type: 'config'`) and the audit record of every change to it
 * (`type: 'audit'`), all in partition `~config` (CONFIG_PARTITION_KEY), so that a change and its
 * audit record are one transactional batch. Changes are rare (an admin's edits: a few thousand
 * a year of a few KB each), far below a logical partition's 20 GB.
 */
export const COSMOS_CONTAINERS = {
  usage: { id: 'usage', partitionKeyPath: '/pk' },
  prices: { id: 'prices', partitionKeyPath: '/model' },
  configuration: { id: 'configuration', partitionKeyPath: '/pk' },
} as const;

export type CosmosContainerName = keyof typeof COSMOS_CONTAINERS;

/** The partition of a department's usage rows in a month. */
export function usagePartitionKey(month: string, department: string): string {
  return `${month}|${department}`;
}

/** The partition of the configuration document and its audit records (container `configuration`). */
export const CONFIG_PARTITION_KEY = '~config';

/** The partition of the day records and report receipts. */
export const LEDGER_PARTITION_KEY = '~ledger';

/** The partition of a month's batch records (`~` sorts after every department id). */
export function batchPartitionKey(month: string): string {
  return usagePartitionKey(month, '~batches');
}
