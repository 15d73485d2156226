import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
  BlobSASPermissions,
  BlobServiceClient,
  StorageSharedKeyCredential,
  generateAccountSASQueryParameters,
} from '@azure/storage-blob';
import type { AzuriteServer } from '../../../local/services/azurite';
import { startAzurite } from '../../../local/services/azurite';
import { alive, until } from './helpers';

const inAnHour = (): Date => new Date(Date.now() + 3600_000);

/** An account SAS for every service: the queue and table SDKs are not installed, so plain HTTP. */
function accountSas(azurite: AzuriteServer): string {
  return generateAccountSASQueryParameters(
    {
      services: AccountSASServices.parse('bqt').toString(),
      resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
      permissions: AccountSASPermissions.parse('rwdlacup'),
      expiresOn: inAnHour(),
    },
    new StorageSharedKeyCredential(azurite.accountName, azurite.accountKey),
  ).toString();
}

describe('Azurite stand-in, in memory', () => {
  let azurite: AzuriteServer;
  beforeAll(async () => {
    azurite = await startAzurite();
  });
  afterAll(() => azurite.stop());

  it('listens on three distinct loopback ports with the development account', () => {
    const urls = [azurite.blobEndpoint, azurite.queueEndpoint, azurite.tableEndpoint].map((u) => new URL(u));
    expect(urls.map((u) => u.hostname)).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.1']);
    expect(new Set(urls.map((u) => u.port)).size).toBe(3);
    expect(urls.map((u) => u.pathname)).toEqual(Array(3).fill('/devstoreaccount1'));
    expect(azurite.connectionString).toContain(`BlobEndpoint=${azurite.blobEndpoint};`);
    expect(azurite.connectionString).toContain(`QueueEndpoint=${azurite.queueEndpoint};`);
    expect(azurite.connectionString).toContain(`TableEndpoint=${azurite.tableEndpoint};`);
  });

  it('serves blobs through the SDK, and a SAS URL reads the blob without the key', async () => {
    const service = BlobServiceClient.fromConnectionString(azurite.connectionString);
    const container = service.getContainerClient('reports');
    await container.create();
    const blob = container.getBlockBlobClient('2026/11/summary.csv');
    await blob.upload('department,cost\nresearch,12.34\n', 32, {
      blobHTTPHeaders: { blobContentType: 'text/csv' },
    });
    expect((await blob.downloadToBuffer()).toString()).toBe('department,cost\nresearch,12.34\n');

    // Private container: an anonymous read is refused (Azure answers 404 there, Azurite 403).
    expect([403, 404]).toContain((await fetch(blob.url)).status);
    const sasUrl = await blob.generateSasUrl({
      permissions: BlobSASPermissions.parse('r'),
      expiresOn: inAnHour(),
    });
    const viaSas = await fetch(sasUrl);
    expect(viaSas.status).toBe(200);
    expect(viaSas.headers.get('content-type')).toBe('text/csv');
    expect(await viaSas.text()).toBe('department,cost\nresearch,12.34\n');

    const readOnly = await fetch(sasUrl, {
      method: 'PUT',
      headers: { 'x-ms-blob-type': 'BlockBlob' },
      body: 'x',
    });
    expect(readOnly.status).toBe(403);
  });

  it('serves queues: create, send, receive over REST', async () => {
    const sas = accountSas(azurite);
    const unsigned = await fetch(`${azurite.queueEndpoint}?comp=list`);
    expect(unsigned.status).toBe(403);

    expect((await fetch(`${azurite.queueEndpoint}/usage-events?${sas}`, { method: 'PUT' })).status).toBe(201);
    const sent = await fetch(`${azurite.queueEndpoint}/usage-events/messages?${sas}`, {
      method: 'POST',
      body: '<QueueMessage><MessageText>aGVsbG8=</MessageText></QueueMessage>',
    });
    expect(sent.status).toBe(201);
    const received = await fetch(`${azurite.queueEndpoint}/usage-events/messages?${sas}`);
    expect(received.status).toBe(200);
    expect(await received.text()).toContain('<MessageText>aGVsbG8=</MessageText>');
    const list = await fetch(`${azurite.queueEndpoint}?comp=list&${sas}`);
    expect(await list.text()).toContain('<Name>usage-events</Name>');
  });

  it('serves tables: create, insert, read over REST', async () => {
    const sas = accountSas(azurite);
    const json = { 'content-type': 'application/json', accept: 'application/json;odata=nometadata' };
    const created = await fetch(`${azurite.tableEndpoint}/Tables?${sas}`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ TableName: 'prices' }),
    });
    expect(created.status).toBe(201);
    const inserted = await fetch(`${azurite.tableEndpoint}/prices?${sas}`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ PartitionKey: 'gpt-4o', RowKey: '2026-11-01', input: '2.50' }),
    });
    expect(inserted.status).toBe(201);
    const read = await fetch(
      `${azurite.tableEndpoint}/prices(PartitionKey='gpt-4o',RowKey='2026-11-01')?${sas}`,
      {
        headers: json,
      },
    );
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ PartitionKey: 'gpt-4o', RowKey: '2026-11-01', input: '2.50' });
  });
});

describe('Azurite stand-in, persisted', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'azurite-test-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('keeps blobs in the data folder across a stop and a new start, and leaves no process', async () => {
    const first = await startAzurite({ dataDir });
    const container = BlobServiceClient.fromConnectionString(first.connectionString).getContainerClient(
      'spool',
    );
    await container.create();
    await container.getBlockBlobClient('events.jsonl').upload('{"n":1}\n', 8);
    await first.stop();
    expect(alive(first.pid)).toBe(false);
    expect(readdirSync(dataDir).length).toBeGreaterThan(0);

    const second = await startAzurite({ dataDir });
    try {
      const again = BlobServiceClient.fromConnectionString(second.connectionString).getContainerClient(
        'spool',
      );
      expect((await again.getBlockBlobClient('events.jsonl').downloadToBuffer()).toString()).toBe(
        '{"n":1}\n',
      );
    } finally {
      await second.stop();
    }
    expect(await until(() => !alive(second.pid), 1000)).toBe(true);
  });

  it('fails with Azurite’s own error when a fixed port is taken', async () => {
    const holder = await startAzurite();
    try {
      const blobPort = Number(new URL(holder.blobEndpoint).port);
      await expect(startAzurite({ blobPort })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await holder.stop();
    }
  });
});
