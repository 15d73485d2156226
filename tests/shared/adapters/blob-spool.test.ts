import { randomUUID } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import { BlobServiceClient } from '@azure/storage-blob';
import type { AzuriteServer } from '../../../local/services/azurite';
import { startAzurite } from '../../../local/services/azurite';
import { provisionBlobContainers } from '../../../local/services/provision';
import { BlobUsageSpool } from '../../../shared/adapters/blob-spool';
import { BLOB_CONTAINERS } from '../../../shared/contracts/storage';
import type { UsageEvent } from '../../../shared/contracts/usage-event';
import {
  isWindowId,
  parseWindowId,
  WINDOW_MS,
  windowId,
  windowStart,
} from '../../../shared/contracts/window';
import { usageEvent as anEvent } from '../../fixtures/usage';
import { NotStoredError } from '../../../shared/metering/usage-recorder';

/** BlobUsageSpool against Azurite, in the spool container the local stack provisions. */

let azurite: AzuriteServer;
let container: ContainerClient;
let spool: BlobUsageSpool;

beforeAll(async () => {
  azurite = await startAzurite();
  await provisionBlobContainers(azurite.connectionString);
  container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
    BLOB_CONTAINERS.usageSpool,
  );
  spool = new BlobUsageSpool(container);
}, 30_000);
afterAll(() => azurite?.stop());

/** A window of its own for every test (consecutive 15-minute windows from 2030-01-01). */
let windows = 0;
function freshWindow(): Date {
  return windowStart(new Date(Date.UTC(2030, 0, 1) + windows++ * WINDOW_MS));
}

/** A valid usage event recorded a few minutes into `window`. */
function usageEvent(id: string, window: Date, fields: Partial<UsageEvent> = {}): UsageEvent {
  const recordedAt = new Date(window.getTime() + 3 * 60_000).toISOString();
  return anEvent({ id, recordedAt, promptTokens: 120, completionTokens: 30, ...fields });
}

async function collect(names: AsyncIterable<string>): Promise<string[]> {
  const found: string[] = [];
  for await (const name of names) found.push(name);
  return found.sort();
}

async function putRaw(name: string, body: string): Promise<void> {
  await container.getBlockBlobClient(name).upload(body, Buffer.byteLength(body));
}

describe('BlobUsageSpool without its container', () => {
  it('has no windows and no events (a deployment whose container is missing is not an outage)', async () => {
    const missing = new BlobUsageSpool(
      BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
        `missing-${Date.now()}`,
      ),
    );
    expect(await missing.windows()).toEqual([]);
    expect(await collect(missing.names(windowId(freshWindow())))).toEqual([]);
  });
});

describe('BlobUsageSpool', () => {
  it('names a blob <window id>/<url-encoded event id>.json', async () => {
    const window = freshWindow();
    const id = `req/1 ü?#%-${randomUUID()}`;
    const event = usageEvent(id, window);
    const name = BlobUsageSpool.blobName(event);
    expect(name).toBe(`${windowId(window)}/${encodeURIComponent(id)}.json`);
    // One path segment for the event, whatever its id contains.
    expect(name.split('/')).toHaveLength(2);

    await spool.write(event);
    expect(await collect(spool.names(windowId(window)))).toEqual([name]);
    expect(await container.getBlobClient(name).exists()).toBe(true);
    const properties = await container.getBlobClient(name).getProperties();
    expect(properties.contentType).toBe('application/json');
    expect(JSON.parse(await spool.read(name))).toEqual(event);
  });

  it('writes idempotently by event id: a second write is no error and keeps the first content', async () => {
    const window = freshWindow();
    const first = usageEvent(`dup-${randomUUID()}`, window, { promptTokens: 10 });
    const retried = { ...first, promptTokens: 999, latencyMs: 1 };
    await spool.write(first);
    await expect(spool.write(retried)).resolves.toBeUndefined();
    await expect(spool.write(first)).resolves.toBeUndefined();

    const names = await collect(spool.names(windowId(window)));
    expect(names).toEqual([BlobUsageSpool.blobName(first)]);
    expect(await spool.eventsOf(windowId(window))).toEqual([first]);
  });

  it('keeps events of different ids apart, and of different windows in different folders', async () => {
    const a = freshWindow();
    const b = freshWindow();
    const inA = [usageEvent(`a1-${randomUUID()}`, a), usageEvent(`a2-${randomUUID()}`, a)];
    const inB = [usageEvent(`b1-${randomUUID()}`, b)];
    await Promise.all([...inA, ...inB].map((e) => spool.write(e)));

    expect(await collect(spool.names(windowId(a)))).toEqual(
      inA.map((e) => BlobUsageSpool.blobName(e)).sort(),
    );
    expect(await collect(spool.names(windowId(b)))).toEqual([BlobUsageSpool.blobName(inB[0] as UsageEvent)]);
    const byId = (x: UsageEvent, y: UsageEvent): number => (x.id < y.id ? -1 : 1);
    expect((await spool.eventsOf(windowId(a))).sort(byId)).toEqual([...inA].sort(byId));
    expect(await spool.eventsOf(windowId(b))).toEqual(inB);
  });

  it('lists only real window ids as windows, ignoring stray blobs', async () => {
    const a = freshWindow();
    const b = freshWindow();
    await spool.write(usageEvent(`w-${randomUUID()}`, a));
    await spool.write(usageEvent(`w-${randomUUID()}`, b));
    const real = windowId(a);
    // Folders that are no window: a name, a month 13, a time off the 15-minute grid, and blobs
    // named like a window but not a folder.
    const strays = ['notes', '20261301T0000Z', '20300101T0007Z', 'lost+found'];
    for (const folder of strays) await putRaw(`${folder}/x.json`, '{}');
    await putRaw(`${real}.json`, '{}');
    await putRaw(`README`, 'not usage');
    const unrelated = windowId(new Date(parseWindowId(real).getTime() + 365 * 86_400_000));
    await putRaw(`nested/${unrelated}/x.json`, '{}');

    const listed = await spool.windows();
    expect(listed).toEqual(expect.arrayContaining([windowId(a), windowId(b)]));
    expect(listed.every((id) => isWindowId(id))).toBe(true);
    for (const folder of strays) expect(listed).not.toContain(folder);
    expect(listed).not.toContain(unrelated);
    expect(new Set(listed).size).toBe(listed.length); // one entry per window, however many events
  });

  it('lists nothing for a window without spooled events', async () => {
    const window = freshWindow();
    expect(await collect(spool.names(windowId(window)))).toEqual([]);
    expect(await spool.eventsOf(windowId(window))).toEqual([]);
    expect(await spool.windows()).not.toContain(windowId(window));
  });

  it('names() stays inside its window (no prefix overlap with a longer folder name)', async () => {
    const window = freshWindow();
    const id = windowId(window);
    const event = usageEvent(`own-${randomUUID()}`, window);
    await spool.write(event);
    await putRaw(`${id}-copy/x.json`, '{}');
    expect(await collect(spool.names(id))).toEqual([BlobUsageSpool.blobName(event)]);
  });

  it('read() returns the stored JSON as written', async () => {
    const window = freshWindow();
    const event = usageEvent(`read-${randomUUID()}`, window, { userId: 'user-ü', audioSeconds: 1.25 });
    await spool.write(event);
    const raw = await spool.read(BlobUsageSpool.blobName(event));
    expect(raw).toBe(JSON.stringify(event));
  });

  it('eventsOf() refuses a blob in the window that is not a usage event', async () => {
    const window = freshWindow();
    await spool.write(usageEvent(`ok-${randomUUID()}`, window));
    await putRaw(`${windowId(window)}/broken.json`, JSON.stringify({ id: 'x' }));
    await expect(spool.eventsOf(windowId(window))).rejects.toThrow();
  });

  it('delete() removes one spooled event and is harmless when repeated', async () => {
    const window = freshWindow();
    const kept = usageEvent(`kept-${randomUUID()}`, window);
    const gone = usageEvent(`gone-${randomUUID()}`, window);
    await spool.write(kept);
    await spool.write(gone);

    await spool.delete(BlobUsageSpool.blobName(gone));
    expect(await collect(spool.names(windowId(window)))).toEqual([BlobUsageSpool.blobName(kept)]);
    await expect(spool.delete(BlobUsageSpool.blobName(gone))).resolves.toBeUndefined();

    await spool.delete(BlobUsageSpool.blobName(kept));
    expect(await collect(spool.names(windowId(window)))).toEqual([]);
    expect(await spool.windows()).not.toContain(windowId(window));
  });

  it('a deleted event can be spooled again (after a release, a late retry lands anew)', async () => {
    const window = freshWindow();
    const event = usageEvent(`again-${randomUUID()}`, window);
    await spool.write(event);
    await spool.delete(BlobUsageSpool.blobName(event));
    await spool.write({ ...event, completionTokens: 7 });
    expect(await spool.eventsOf(windowId(window))).toEqual([{ ...event, completionTokens: 7 }]);
  });

  it('does not swallow errors other than "already exists"', async () => {
    const missing = new BlobUsageSpool(
      BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
        `absent-${randomUUID()}`,
      ),
    );
    // Refused outright (no container): the event is certainly not in the spool.
    const error: unknown = await missing
      .write(usageEvent(`e-${randomUUID()}`, freshWindow()))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotStoredError);
    expect((error as NotStoredError).cause).toMatchObject({ statusCode: 404 });
  });
});
