import { createHash } from 'node:crypto';
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import {
  BlobSASPermissions,
  generateBlobSASQueryParameters,
  SASProtocol,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
import type { Quarantine, RenderedReportFile, ReportStore, WindowBatch } from '../chargeback/ports';
import type { ReportFile } from '../contracts/report-paths';
import { parseReportPath, reportPrefix } from '../contracts/report-paths';
import type { ReportKind } from '../contracts/report-period';

/**
 * Reports in Blob Storage (paths in contracts/report-paths.ts). Each file is written with a single
 * Put Blob, which Blob Storage commits atomically: a reader sees the old content or the new, never
 * a half-written file. A file whose content is unchanged (same SHA-256 in its metadata) is not
 * rewritten; a department file the report no longer has is deleted. The container comes from the
 * deployment (or the local stack).
 */
export class BlobReportStore implements ReportStore {
  constructor(private readonly container: ContainerClient) {}

  async write(files: readonly RenderedReportFile[]): Promise<string[]> {
    await Promise.all(
      files.map(async (file) => {
        const blob = this.container.getBlockBlobClient(file.path);
        const existing = await blob.getProperties().catch((error: { statusCode?: number }) => {
          if (error.statusCode === 404) return undefined;
          throw error;
        });
        if (existing?.metadata?.sha256 === file.metadata.sha256) return;
        const body = Buffer.from(file.content, 'utf8');
        await blob.upload(body, body.byteLength, {
          blobHTTPHeaders: {
            blobContentType: file.contentType,
            ...(file.attachment
              ? { blobContentDisposition: `attachment; filename="${file.path.split('/').join('_')}"` }
              : {}),
          },
          metadata: file.metadata,
        });
      }),
    );
    await this.removeStaleDepartmentFiles(files);
    return files.map((f) => f.path);
  }

  /**
   * A report's department files are its departments' only: a department the report no longer lists
   * (usage remapped to another department, or no longer configured) keeps no file with old figures.
   */
  private async removeStaleDepartmentFiles(files: readonly RenderedReportFile[]): Promise<void> {
    const written = new Set(files.map((f) => f.path));
    const folders = new Set(
      files
        .filter((f) => f.department !== undefined)
        .map((f) => f.path.slice(0, f.path.lastIndexOf('/') + 1)),
    );
    for (const prefix of folders) {
      for await (const blob of this.container.listBlobsFlat({ prefix })) {
        if (!written.has(blob.name)) await this.container.deleteBlob(blob.name);
      }
    }
  }
}

export interface ReportListing extends ReportFile {
  path: string;
  size: number;
  lastModified: string;
  contentType?: string;
  total?: string;
}

/** The reports there are, optionally for one period (month or day), kind and department. */
export async function listReports(
  container: ContainerClient,
  filter: { period?: string; kind?: ReportKind; department?: string },
): Promise<ReportListing[]> {
  const found: ReportListing[] = [];
  if (!(await container.exists())) return found;
  for await (const blob of container.listBlobsFlat({ prefix: reportPrefix(filter), includeMetadata: true })) {
    const file = parseReportPath(blob.name);
    if (!file) continue;
    if (filter.department && file.department !== filter.department) continue;
    found.push({
      path: blob.name,
      ...file,
      size: blob.properties.contentLength ?? 0,
      lastModified: (blob.properties.lastModified ?? new Date(0)).toISOString(),
      ...(blob.properties.contentType ? { contentType: blob.properties.contentType } : {}),
      ...(blob.metadata?.total ? { total: blob.metadata.total } : {}),
    });
  }
  return found.sort((a, b) => (a.path < b.path ? -1 : 1));
}

/**
 * A read-only link to one report, valid `ttlMinutes` (at most 15): signed with the account key
 * when the client has one (Azurite, key-based accounts), else with a user delegation key obtained
 * through the app's Entra identity (no account key in production).
 */
export async function reportReadLink(
  service: BlobServiceClient,
  containerName: string,
  path: string,
  ttlMinutes = 15,
): Promise<{ url: string; expiresAt: string }> {
  const minutes = Math.min(Math.max(ttlMinutes, 1), 15);
  const startsOn = new Date(Date.now() - 60_000);
  const expiresOn = new Date(Date.now() + minutes * 60_000);
  const blob = service.getContainerClient(containerName).getBlobClient(path);
  const permissions = BlobSASPermissions.parse('r');
  if (service.credential instanceof StorageSharedKeyCredential) {
    return {
      url: await blob.generateSasUrl({ permissions, startsOn, expiresOn }),
      expiresAt: expiresOn.toISOString(),
    };
  }
  const key = await service.getUserDelegationKey(startsOn, expiresOn);
  const sas = generateBlobSASQueryParameters(
    { containerName, blobName: path, permissions, startsOn, expiresOn, protocol: SASProtocol.Https },
    key,
    service.accountName,
  );
  return { url: `${blob.url}?${sas.toString()}`, expiresAt: expiresOn.toISOString() };
}

/** Raw events that failed the usage schema, one blob each at `<window>/<batch>/<sha256>.json` (idempotent). */
export class BlobQuarantine implements Quarantine {
  constructor(private readonly container: ContainerClient) {}

  async put(batch: WindowBatch, invalid: ReadonlyArray<{ raw: string; problem: string }>): Promise<void> {
    for (const { raw, problem } of invalid) {
      const name = `${batch.windowId}/${batch.batch}/${createHash('sha256').update(raw).digest('hex')}.json`;
      await this.container.getBlockBlobClient(name).upload(raw, Buffer.byteLength(raw), {
        metadata: { problem: problem.slice(0, 1000).replace(/[^\x20-\x7e]/g, '?') },
        blobHTTPHeaders: { blobContentType: 'application/json' },
      });
    }
  }
}
