#!/usr/bin/env node
/**
 * Builds the deployable Function App, `.data/package/function-app.zip`, for
 * `az functionapp deployment source config-zip` or a Flex Consumption one-deploy.
 *
 * It ships the app and nothing else: `functions/` and `shared/` compiled (tsconfig.app.json) to
 * `dist/`, host.json, a package.json with the production dependencies only, the lockfile pruned to
 * them, and `node_modules` installed from that lockfile with `npm ci --omit=dev --ignore-scripts`.
 * The local runtime, tests, benchmarks, scripts and TypeScript sources stay out. Before zipping it
 * checks that every package the compiled app imports is installed in the staging folder and that
 * no dev-only package is.
 *
 * Usage: npm run package [-- --out DIR]   (DIR defaults to .data/package; the staging folder is DIR/app)
 */
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const { isBuiltin } = require('node:module');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const DEFAULT_OUT = path.join(ROOT, '.data', 'package');
const ZIP_NAME = 'function-app.zip';
/** Fixed entry time, so that the same staging folder always gives the same zip bytes. */
const ZIP_MTIME = new Date('2000-01-01T00:00:00Z');
/** Modules the Functions Node worker provides at run time, not node_modules. */
const PROVIDED_BY_HOST = new Set(['@azure/functions-core']);

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

function writeJson(file, value) {
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}

/** The package.json that ships: what the Functions host reads (main) and the production dependencies. */
function productionManifest(pkg) {
  if (!pkg.main) throw new Error('package.json has no "main" (the glob of the function entry files).');
  const manifest = {
    name: pkg.name,
    version: pkg.version,
    private: true,
    description: pkg.description,
    license: pkg.license,
    main: pkg.main,
    engines: pkg.engines,
    dependencies: pkg.dependencies ?? {},
    // npm ci checks the lockfile against them, so they must ship with it.
    overrides: pkg.overrides,
  };
  for (const key of Object.keys(manifest)) if (manifest[key] === undefined) delete manifest[key];
  return manifest;
}

/**
 * The lockfile without its dev-only packages, so that it agrees with the production manifest and
 * `npm ci` accepts it. Entries marked `devOptional` (optional for production) are kept as optional.
 */
function productionLockfile(lock, manifest) {
  if (!(lock.lockfileVersion >= 2) || !lock.packages) {
    throw new Error(
      `package-lock.json v${lock.lockfileVersion} is not supported: regenerate it with npm >= 7.`,
    );
  }
  const packages = {};
  for (const [location, entry] of Object.entries(lock.packages)) {
    if (location === '') {
      const { devDependencies: _dev, ...rootEntry } = entry;
      packages[''] = { ...rootEntry, name: manifest.name, version: manifest.version };
      packages[''].dependencies = manifest.dependencies;
      if (manifest.engines) packages[''].engines = manifest.engines;
    } else if (entry.devOptional) {
      const { devOptional: _devOptional, ...rest } = entry;
      packages[location] = { ...rest, optional: true };
    } else if (!entry.dev) {
      packages[location] = entry;
    }
  }
  return { ...lock, name: manifest.name, version: manifest.version, packages };
}

/** The lockfile locations (`node_modules/...`) of the packages that only development needs. */
function devOnlyLocations(lock) {
  return Object.entries(lock.packages)
    .filter(([location, entry]) => location !== '' && entry.dev)
    .map(([location]) => location);
}

/** `lodash/fp` → `lodash`, `@azure/cosmos/x` → `@azure/cosmos`. */
function packageName(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Every file under `dir` (relative, `/`-separated, sorted) whose name passes `keep`. */
function walkFiles(dir, keep = () => true) {
  const files = [];
  const walk = (relative) => {
    const entries = fs.readdirSync(path.join(dir, relative), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const rel = relative ? `${relative}/${entry.name}` : entry.name;
      if (!keep(rel, entry)) continue;
      if (entry.isDirectory()) walk(rel);
      else if (entry.isFile()) files.push(rel);
      else throw new Error(`${path.join(dir, rel)} is neither a file nor a folder (a link?): cannot zip it.`);
    }
  };
  walk('');
  return files;
}

/**
 * The files that go into the zip. Left out: the `.bin` folders of node_modules (links to
 * command-line tools, which the app does not run) and npm's node_modules/.package-lock.json.
 */
function listFiles(stageDir) {
  return walkFiles(
    stageDir,
    (rel, entry) =>
      !(entry.name === '.bin' && /(^|\/)node_modules\/\.bin$/.test(rel)) &&
      rel !== 'node_modules/.package-lock.json',
  );
}

/**
 * The packages the compiled app loads (`require('x')`, `import('x')`), each with the files that
 * load it: builtins and modules the Functions host provides left out.
 */
function importedPackages(distDir) {
  const imports = new Map();
  for (const file of walkFiles(distDir).filter((f) => f.endsWith('.js'))) {
    const source = fs.readFileSync(path.join(distDir, file), 'utf8');
    for (const match of source.matchAll(/\b(?:require|import)\(\s*(["'])([^"'\s]+)\1\s*\)/g)) {
      const specifier = match[2];
      if (specifier.startsWith('.') || specifier.startsWith('/') || isBuiltin(specifier)) continue;
      const name = packageName(specifier);
      if (PROVIDED_BY_HOST.has(name)) continue;
      if (!imports.has(name)) imports.set(name, new Set());
      imports.get(name).add(file);
    }
  }
  return new Map(
    [...imports].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, files]) => [name, [...files]]),
  );
}

/** Compiles functions/ and shared/ only (tsconfig.app.json) into `outDir`. Throws on a type error. */
function compile(outDir) {
  const tsc = require.resolve('typescript/bin/tsc', { paths: [ROOT] });
  execFileSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.app.json'), '--outDir', outDir], {
    cwd: ROOT,
    stdio: 'inherit',
  });
}

/**
 * Lays out the app in `stageDir` (emptied first): dist/ (functions/ and shared/ compiled),
 * host.json, package.json and package-lock.json. Does not install the dependencies.
 */
function stage(stageDir) {
  fs.rmSync(stageDir, { recursive: true, force: true });
  fs.mkdirSync(stageDir, { recursive: true });
  compile(path.join(stageDir, 'dist'));
  fs.copyFileSync(path.join(ROOT, 'host.json'), path.join(stageDir, 'host.json'));
  const manifest = productionManifest(readJson(path.join(ROOT, 'package.json')));
  writeJson(path.join(stageDir, 'package.json'), manifest);
  writeJson(
    path.join(stageDir, 'package-lock.json'),
    productionLockfile(readJson(path.join(ROOT, 'package-lock.json')), manifest),
  );
  return manifest;
}

/** `npm ci` of the production dependencies into `stageDir/node_modules`, with the npm running this script. */
function installProductionDependencies(stageDir) {
  const npmCli = process.env.npm_execpath;
  const [command, npmArgs] = npmCli?.endsWith('.js') ? [process.execPath, [npmCli]] : ['npm', []];
  const flags = ['--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'];
  execFileSync(command, [...npmArgs, 'ci', ...flags, '--prefix', stageDir], {
    cwd: stageDir,
    stdio: 'inherit',
  });
}

/**
 * After the install: every package the app imports resolves inside `stageDir/node_modules` (not
 * from a node_modules further up), and no dev-only package of `rootLock` is there.
 */
function verifyInstall(stageDir, rootLock) {
  const modules = path.join(stageDir, 'node_modules');
  const problems = [];
  for (const [name, files] of importedPackages(path.join(stageDir, 'dist'))) {
    let resolved;
    try {
      resolved = require.resolve(name, { paths: [stageDir] });
    } catch {
      resolved = undefined;
    }
    if (!resolved?.startsWith(modules + path.sep)) {
      problems.push(`${name} (imported by ${files.join(', ')}) is not installed: is it a devDependency?`);
    }
  }
  for (const location of devOnlyLocations(rootLock)) {
    if (fs.existsSync(path.join(stageDir, location))) problems.push(`dev-only package shipped: ${location}`);
  }
  if (problems.length > 0) throw new Error(`the staged app is not right:\n  ${problems.join('\n  ')}`);
}

/** Zips `files` of `stageDir` (default: listFiles) into `zipFile`, the folder's contents at the zip root. */
function zip(stageDir, zipFile, files = listFiles(stageDir)) {
  const yazl = require('yazl');
  fs.mkdirSync(path.dirname(zipFile), { recursive: true });
  const archive = new yazl.ZipFile();
  for (const file of files) {
    const executable = fs.statSync(path.join(stageDir, file)).mode & 0o111;
    archive.addFile(path.join(stageDir, file), file, {
      mtime: ZIP_MTIME,
      mode: executable ? 0o100755 : 0o100644,
    });
  }
  archive.end();
  const partial = `${zipFile}.partial`;
  return new Promise((resolve, reject) => {
    const output = fs.createWriteStream(partial);
    archive.outputStream.on('error', reject);
    output.on('error', reject);
    output.on('close', () => {
      fs.renameSync(partial, zipFile);
      resolve(files);
    });
    archive.outputStream.pipe(output);
  });
}

/** The whole build: stage, install, verify, zip. */
async function packageApp({ outDir = DEFAULT_OUT } = {}) {
  const stageDir = path.join(outDir, 'app');
  const zipFile = path.join(outDir, ZIP_NAME);
  fs.rmSync(zipFile, { force: true });
  console.log(`Compiling functions/ and shared/ into ${stageDir}`);
  stage(stageDir);
  console.log('Installing the production dependencies (npm ci --omit=dev)');
  installProductionDependencies(stageDir);
  verifyInstall(stageDir, readJson(path.join(ROOT, 'package-lock.json')));
  console.log(`Writing ${zipFile}`);
  const files = await zip(stageDir, zipFile);
  return { stageDir, zipFile, files };
}

function parseArgs(argv) {
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out' && argv[i + 1]) options.outDir = path.resolve(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]}. Usage: node scripts/package.js [--out DIR]`);
  }
  return options;
}

module.exports = {
  productionManifest,
  productionLockfile,
  devOnlyLocations,
  importedPackages,
  listFiles,
  stage,
  zip,
  packageApp,
};

if (require.main === module) {
  const started = Date.now();
  Promise.resolve()
    .then(() => packageApp(parseArgs(process.argv.slice(2))))
    .then(({ zipFile, files }) => {
      const mib = (fs.statSync(zipFile).size / 1024 / 1024).toFixed(1);
      const modules = files.filter((file) => file.startsWith('node_modules/')).length;
      const seconds = ((Date.now() - started) / 1000).toFixed(0);
      console.log(
        `${path.relative(process.cwd(), zipFile)}: ${mib} MiB, ${files.length} files ` +
          `(${files.length - modules} app, ${modules} in node_modules), in ${seconds} s`,
      );
    })
    .catch((error) => {
      console.error(`Packaging failed: ${error.message}`);
      process.exit(1);
    });
}
