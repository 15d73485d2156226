import type { ContainerClient } from '@azure/storage-blob';
import type { UsageSpool } from './usage-recorder';
import type { UsageEvent } from './usage';
import { usageEventSchema, windowId } from './usage';

export const USAGE_SPOOL_CONTAINER = 'usage-spool';

/**
 * The fallback store for usage events when Redis is unavailable: one blob per event at
 * `<window>/<event id>.json`, created only if absent, so a retried write never duplicates.
 */
export class BlobUsageSpool implements UsageSpool {
  #ready: Promise<unknown> | undefined;

  constructor(private readonly container: ContainerClient) {}

  static blobName(event: Pick<UsageEvent, 'window' | 'id'>): string {
    return `${windowId(new Date(event.window))}/${encodeURIComponent(event.id)}.json`;
  }

  async write(event: UsageEvent): Promise<void> {
    this.#ready ??= this.container.createIfNotExists().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    await this.#ready;
    const body = JSON.stringify(event);
    try {
      await this.container
        .getBlockBlobClient(BlobUsageSpool.blobName(event))
        .upload(body, Buffer.byteLength(body), {
          conditions: { ifNoneMatch: '*' },
          blobHTTPHeaders: { blobContentType: 'application/json' },
        });
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 409) return; // already spooled: idempotent
      throw error;
    }
  }

  /** Every spooled event of a window. */
  async read(window: Date): Promise<UsageEvent[]> {
    const events: UsageEvent[] = [];
    if (!(await this.container.exists())) return events;
    for await (const blob of this.container.listBlobsFlat({ prefix: `${windowId(window)}/` })) {
      const content = await this.container.getBlobClient(blob.name).downloadToBuffer();
      events.push(usageEventSchema.parse(JSON.parse(content.toString('utf8'))));
    }
    return events;
  }
}
