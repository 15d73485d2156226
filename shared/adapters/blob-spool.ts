import type { ContainerClient } from '@azure/storage-blob';
import type { SpooledUsage } from '../chargeback/ports';
import type { UsageEvent } from '../contracts/usage-event';
import { usageEventSchema } from '../contracts/usage-event';
import { isWindowId, windowId } from '../contracts/window';
import type { UsageSpool } from '../metering/usage-recorder';
import { NotStoredError } from '../metering/usage-recorder';

/**
 * The fallback store for usage events when Redis is unavailable: one blob per event at
 * `<window id>/<event id>.json` in the spool container, created only if absent, so a retried
 * write never duplicates. The chargeback claims them into a window's batch and deletes them on
 * release. The container itself comes from the deployment (or the local stack).
 */
export class BlobUsageSpool implements UsageSpool, SpooledUsage {
  constructor(private readonly container: ContainerClient) {}

  static blobName(event: Pick<UsageEvent, 'window' | 'id'>): string {
    return `${windowId(new Date(event.window))}/${encodeURIComponent(event.id)}.json`;
  }

  async write(event: UsageEvent, deadline?: AbortSignal): Promise<void> {
    const body = JSON.stringify(event);
    try {
      await this.container
        .getBlockBlobClient(BlobUsageSpool.blobName(event))
        .upload(body, Buffer.byteLength(body), {
          conditions: { ifNoneMatch: '*' },
          blobHTTPHeaders: { blobContentType: 'application/json' },
          ...(deadline ? { abortSignal: deadline } : {}),
        });
    } catch (error) {
      const { statusCode, code } = error as { statusCode?: number; code?: string };
      if (statusCode === 409) return; // already spooled: idempotent
      // Refused (a missing container, no permission) or never connected: certainly not stored. A
      // timeout or a dropped connection may hide an upload that completed.
      if ((statusCode !== undefined && statusCode >= 400 && statusCode < 500) || code === 'ECONNREFUSED') {
        throw new NotStoredError(`The spool refused the event (${statusCode ?? code})`, { cause: error });
      }
      throw error;
    }
  }

  /** Is this event spooled (and not yet released)? */
  async holds(event: Pick<UsageEvent, 'window' | 'id'>): Promise<boolean> {
    return this.container.getBlobClient(BlobUsageSpool.blobName(event)).exists();
  }

  async windows(): Promise<string[]> {
    const found: string[] = [];
    try {
      for await (const item of this.container.listBlobsByHierarchy('/')) {
        if (item.kind !== 'prefix') continue;
        const id = item.name.replace(/\/$/, '');
        if (isWindowId(id)) found.push(id);
      }
    } catch (error) {
      if (!isContainerMissing(error)) throw error;
    }
    return found;
  }

  async *names(windowId: string): AsyncGenerator<string> {
    try {
      for await (const blob of this.container.listBlobsFlat({ prefix: `${windowId}/` })) yield blob.name;
    } catch (error) {
      if (!isContainerMissing(error)) throw error;
    }
  }

  async read(name: string): Promise<string> {
    return (await this.container.getBlobClient(name).downloadToBuffer()).toString('utf8');
  }

  /** Every spooled event of a window (for inspection and tests; the chargeback claims by name). */
  async eventsOf(windowId: string): Promise<UsageEvent[]> {
    const events: UsageEvent[] = [];
    for await (const name of this.names(windowId)) {
      events.push(usageEventSchema.parse(JSON.parse(await this.read(name))));
    }
    return events;
  }

  async delete(name: string): Promise<void> {
    await this.container.getBlobClient(name).deleteIfExists();
  }
}

/** A spool whose container does not exist holds nothing: that is not an outage. */
function isContainerMissing(error: unknown): boolean {
  return (error as { statusCode?: number; code?: string }).statusCode === 404;
}
