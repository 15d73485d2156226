/** Types of scripts/package.js (plain CommonJS, run by `npm run package`), for its tests. */

export interface PackageManifest {
  name: string;
  version: string;
  private: true;
  description?: string;
  license?: string;
  main: string;
  engines?: Record<string, string>;
  dependencies: Record<string, string>;
  overrides?: Record<string, unknown>;
  devDependencies?: never;
  scripts?: never;
}

export interface LockfileEntry {
  version?: string;
  dev?: boolean;
  devOptional?: boolean;
  optional?: boolean;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  [key: string]: unknown;
}

export interface Lockfile {
  name: string;
  version: string;
  lockfileVersion: number;
  packages: Record<string, LockfileEntry>;
  [key: string]: unknown;
}

export function productionManifest(pkg: Record<string, unknown>): PackageManifest;
export function productionLockfile(lock: Lockfile, manifest: PackageManifest): Lockfile;
/** Lockfile locations (`node_modules/...`) of the dev-only packages. */
export function devOnlyLocations(lock: Lockfile): string[];
/** Package name → the compiled files (relative to `distDir`) that import it. */
export function importedPackages(distDir: string): Map<string, string[]>;
/** The files of a staging folder that go into the zip, relative and sorted. */
export function listFiles(stageDir: string): string[];
/** Compiles functions/ and shared/ into `stageDir/dist` and writes host.json, package.json and the lockfile. */
export function stage(stageDir: string): PackageManifest;
export function zip(stageDir: string, zipFile: string, files?: string[]): Promise<string[]>;
export function packageApp(options?: {
  outDir?: string;
}): Promise<{ stageDir: string; zipFile: string; files: string[] }>;
