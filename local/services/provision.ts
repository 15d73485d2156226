import type { CosmosClient } from '@azure/cosmos';
import { BlobServiceClient } from '@azure/storage-blob';
import { BLOB_CONTAINERS, COSMOS_CONTAINERS, COSMOS_DATABASE } from '../../shared/contracts/storage';

/**
 * What the deployment creates in Azure (Bicep), created here for the local stand-ins: the app
 * only opens its containers, it never creates them.
 */
export async function provisionBlobContainers(
  connectionString: string,
  reportsContainer?: string,
): Promise<void> {
  const service = BlobServiceClient.fromConnectionString(connectionString);
  const names = new Set<string>([
    ...Object.values(BLOB_CONTAINERS),
    reportsContainer?.trim() || BLOB_CONTAINERS.reports,
  ]);
  await Promise.all([...names].map((name) => service.getContainerClient(name).createIfNotExists()));
}

export async function provisionCosmos(client: CosmosClient, databaseName?: string): Promise<void> {
  const { database } = await client.databases.createIfNotExists({
    id: databaseName?.trim() || COSMOS_DATABASE,
  });
  for (const { id, partitionKeyPath } of Object.values(COSMOS_CONTAINERS)) {
    await database.containers.createIfNotExists({ id, partitionKey: { paths: [partitionKeyPath] } });
  }
}
