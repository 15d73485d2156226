import { BlobServiceClient } from '@azure/storage-blob';
import type { AzuriteServer } from '../../../local/services/azurite';
import { startAzurite } from '../../../local/services/azurite';
import { createAppServices } from '../../../shared/config/composition';
import { BLOB_CONTAINERS } from '../../../shared/contracts/storage';

/** The composition root against a real Blob endpoint (Azurite); nothing else is contacted. */

let azurite: AzuriteServer;
beforeAll(async () => {
  azurite = await startAzurite();
}, 30_000);
afterAll(() => azurite?.stop());

function env(overrides: Record<string, string>): NodeJS.ProcessEnv {
  return {
    REDIS_URL: 'redis://127.0.0.1:1',
    STORAGE_CONNECTION_STRING: azurite.connectionString,
    COSMOS_ENDPOINT: 'https://127.0.0.1:1',
    AZURE_OPENAI_ENDPOINT: 'http://127.0.0.1:1',
    SPEECH_ENDPOINT: 'http://127.0.0.1:1',
    GATEWAY_SHARED_SECRET: 'a-gateway-secret-of-some-length',
    ...overrides,
  };
}

describe('ensureBlobContainers', () => {
  it('creates the spool, quarantine and reports containers once at start-up, and again is a no-op', async () => {
    const reports = `reports-${Date.now()}`;
    const services = await createAppServices(env({ REPORTS_CONTAINER: reports }));
    try {
      const blobs = BlobServiceClient.fromConnectionString(azurite.connectionString);
      expect(await blobs.getContainerClient(reports).exists()).toBe(false);
      expect(await services.ensureBlobContainers()).toEqual([]);
      for (const name of [reports, BLOB_CONTAINERS.usageSpool, BLOB_CONTAINERS.usageQuarantine]) {
        expect(await blobs.getContainerClient(name).exists()).toBe(true);
      }
      expect(await services.ensureBlobContainers()).toEqual([]);
    } finally {
      await services.close();
    }
  });

  it('names each container it could not ensure instead of failing the start', async () => {
    const services = await createAppServices(
      env({
        STORAGE_CONNECTION_STRING: azurite.connectionString.replace(
          /AccountKey=[^;]+/,
          'AccountKey=d3Jvbmc=',
        ),
      }),
    );
    try {
      const problems = await services.ensureBlobContainers();
      expect(problems).toHaveLength(3);
      expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(
        [BLOB_CONTAINERS.reports, BLOB_CONTAINERS.usageQuarantine, BLOB_CONTAINERS.usageSpool].sort(),
      );
    } finally {
      await services.close();
    }
  });
});
