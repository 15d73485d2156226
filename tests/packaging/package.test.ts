import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yauzl from 'yauzl';
import type { Lockfile, PackageManifest } from '../../scripts/package';
import {
  devOnlyLocations,
  importedPackages,
  listFiles,
  productionLockfile,
  productionManifest,
  stage,
  zip,
} from '../../scripts/package';

/**
 * `npm run package` (scripts/package.js): the staging step for real (functions/ and shared/
 * compiled, manifest and lockfile written), the production dependency set from the lockfile, and
 * the zip of the staged app. The `npm ci --omit=dev` itself is left to `npm run package` (CI runs
 * it), which also checks the installed node_modules: it takes minutes.
 */

const root = join(__dirname, '..', '..');
const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;
const rootManifest = readJson<Record<string, unknown> & PackageManifest>(join(root, 'package.json'));
const rootDevDependencies = Object.keys(
  (rootManifest as { devDependencies?: Record<string, string> }).devDependencies ?? {},
);
const rootLock = readJson<Lockfile>(join(root, 'package-lock.json'));

let workDir: string;
let stageDir: string;
let manifest: PackageManifest;

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'chargeback-package-'));
  stageDir = join(workDir, 'app');
  manifest = stage(stageDir);
}, 180_000);

afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

function zipEntries(file: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true }, (error, zipFile) => {
      if (error) return reject(error);
      const names: string[] = [];
      zipFile.on('entry', (entry: yauzl.Entry) => {
        names.push(entry.fileName);
        zipFile.readEntry();
      });
      zipFile.on('end', () => resolve(names));
      zipFile.on('error', reject);
      zipFile.readEntry();
    });
  });
}

describe('the staged app', () => {
  it('holds the compiled functions/ and shared/ and nothing else of the repository', () => {
    const files = listFiles(stageDir);
    const app = files.filter((file) => file.startsWith('dist/'));
    const other = files.filter((file) => !file.startsWith('dist/'));

    expect(other).toEqual(['host.json', 'package-lock.json', 'package.json']);
    expect(app.filter((file) => !/^dist\/(functions|shared)\/.+\.js(\.map)?$/.test(file))).toEqual([]);
    expect(app.some((file) => /^dist\/functions\/.+\.js$/.test(file))).toBe(true);
    expect(app.some((file) => file.startsWith('dist/shared/'))).toBe(true);
    for (const folder of ['local', 'tests', 'bench', 'scripts']) {
      expect(app.filter((file) => file.startsWith(`dist/${folder}/`))).toEqual([]);
    }
  });

  it('ships host.json as it is', () => {
    expect(readFileSync(join(stageDir, 'host.json'), 'utf8')).toBe(
      readFileSync(join(root, 'host.json'), 'utf8'),
    );
  });

  it('has a package.json with the same main and the production dependencies only', () => {
    const shipped = readJson<Record<string, unknown>>(join(stageDir, 'package.json'));
    expect(shipped).toEqual(manifest);
    expect(shipped.main).toBe(rootManifest.main);
    expect(shipped.main).toBe('dist/functions/**/*.js');
    expect(shipped.dependencies).toEqual(rootManifest.dependencies);
    expect(shipped.engines).toEqual(rootManifest.engines);
    expect(shipped.engines).toHaveProperty('node');
    expect(shipped).not.toHaveProperty('devDependencies');
    expect(shipped).not.toHaveProperty('scripts');
  });
});

describe('the production dependencies', () => {
  const lock = () => readJson<Lockfile>(join(stageDir, 'package-lock.json'));

  it('ship a lockfile without a single dev-only package', () => {
    const shipped = lock();
    expect(shipped.packages['']).not.toHaveProperty('devDependencies');
    expect(shipped.packages['']?.dependencies).toEqual(rootManifest.dependencies);
    expect(Object.entries(shipped.packages).filter(([, entry]) => entry.dev)).toEqual([]);
    const devOnly = devOnlyLocations(rootLock);
    expect(devOnly.length).toBeGreaterThan(100);
    expect(devOnly.filter((location) => location in shipped.packages)).toEqual([]);
  });

  it('leave out the tools, the local runtime and the demo', () => {
    const shipped = lock();
    for (const name of [
      'jest',
      'typescript',
      'eslint',
      'azurite',
      'autocannon',
      'cli-progress',
      'openai',
      'yazl',
    ]) {
      expect(rootDevDependencies).toContain(name);
      expect(shipped.packages).not.toHaveProperty(`node_modules/${name}`);
    }
    // A devDependency may still ship when a production package needs it too (ws: the Speech SDK).
    for (const name of rootDevDependencies) {
      const entry = shipped.packages[`node_modules/${name}`];
      if (entry) expect(rootLock.packages[`node_modules/${name}`]?.dev).toBeFalsy();
    }
  });

  it('are exactly the packages the compiled app imports, each one installed at the top level', () => {
    const imported = importedPackages(join(stageDir, 'dist'));
    const shipped = lock();
    for (const name of imported.keys()) {
      expect({ name, dependency: name in manifest.dependencies }).toEqual({ name, dependency: true });
      expect(shipped.packages[`node_modules/${name}`]).toBeDefined();
    }
    // Nothing in dependencies that the app never loads (such a package belongs in devDependencies).
    expect(Object.keys(manifest.dependencies).filter((name) => !imported.has(name))).toEqual([]);
  });

  it('are computed from any lockfile the same way', () => {
    const lockfile: Lockfile = {
      name: 'x',
      version: '1.0.0',
      lockfileVersion: 3,
      packages: {
        '': { name: 'x', version: '1.0.0', dependencies: { a: '^1' }, devDependencies: { d: '^1' } },
        'node_modules/a': { version: '1.0.0', dependencies: { b: '^1' } },
        'node_modules/b': { version: '1.0.0' },
        'node_modules/d': { version: '1.0.0', dev: true },
        'node_modules/o': { version: '1.0.0', devOptional: true },
      },
    };
    const pruned = productionLockfile(
      lockfile,
      productionManifest({ name: 'x', version: '1.0.0', main: 'dist/f.js', dependencies: { a: '^1' } }),
    );
    expect(Object.keys(pruned.packages)).toEqual(['', 'node_modules/a', 'node_modules/b', 'node_modules/o']);
    expect(pruned.packages['']).toEqual({ name: 'x', version: '1.0.0', dependencies: { a: '^1' } });
    expect(pruned.packages['node_modules/o']).toEqual({ version: '1.0.0', optional: true });
    expect(devOnlyLocations(lockfile)).toEqual(['node_modules/d']);
  });
});

describe('the zip', () => {
  it('holds the staged folder at its root, the same files, and nothing else', async () => {
    const zipFile = join(workDir, 'function-app.zip');
    const files = await zip(stageDir, zipFile);
    const entries = await zipEntries(zipFile);
    expect(entries).toEqual(files);
    expect(entries).toEqual(listFiles(stageDir));
    expect(entries).toContain('host.json');
    expect(entries).toContain('package.json');
    expect(entries.some((name) => /^dist\/functions\/.+\.js$/.test(name))).toBe(true);
    expect(entries.filter((name) => name.endsWith('.ts'))).toEqual([]);
  });

  it('is the same bytes for the same staged files', async () => {
    const first = await zip(stageDir, join(workDir, 'a.zip')).then(() =>
      readFileSync(join(workDir, 'a.zip')),
    );
    const second = await zip(stageDir, join(workDir, 'b.zip')).then(() =>
      readFileSync(join(workDir, 'b.zip')),
    );
    expect(first.equals(second)).toBe(true);
  });
});
