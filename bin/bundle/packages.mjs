// The package files `make bundle` puts beside the bundled code, at their mirrored node_modules
// paths: what packages find next to their own modules at run time (piscina's thread entry, the
// tfjs wasm binaries, yargs' locales, the Dawn addon), and the version records env.json reads.
import { build } from 'esbuild';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, posix } from 'node:path';
import { copyInto, DAWN_PLATFORM, die, EXTERNAL, ROOT } from './common.mjs';

/** The package folder (relative to ROOT) → package name of every bundled node_modules file. */
export function bundledPackages(inputs) {
  const pkgs = new Map();
  for (const i of inputs) {
    const m = /^(.*node_modules\/(@[^/]+\/[^/]+|[^/]+))\//.exec(i);
    if (m) pkgs.set(m[1], m[2]);
  }
  return pkgs;
}

/** Every run-time file of the bundled packages (esbuild's metafile `inputs`, `pkgs` of them). */
export async function copyPackageFiles(out, inputs, pkgs) {
  await piscinaWorker(out, pkgs);
  wasmBinaries(out, inputs);
  // yargs reads its messages from ../../locales next to its ESM shim.
  for (const [dir, name] of pkgs) {
    if (name !== 'yargs' || !existsSync(join(ROOT, dir, 'locales'))) continue;
    for (const f of readdirSync(join(ROOT, dir, 'locales')))
      copyInto(out, join(ROOT, dir, 'locales', f), `${dir}/locales/${f}`);
  }
  dawnAddon(out);
}

// piscina starts its own dist/worker.js (resolve(__dirname, 'worker.js')) in each thread, which
// then imports our worker entry: bundle it at its mirrored path, as CommonJS.
async function piscinaWorker(out, pkgs) {
  for (const [dir, name] of pkgs) {
    if (name !== 'piscina') continue;
    const src = join(ROOT, dir, 'dist', 'worker.js');
    if (!existsSync(src)) die(`${dir}/dist/worker.js not found (piscina layout changed?)`);
    await build({
      absWorkingDir: ROOT,
      entryPoints: [src],
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      outfile: join(out, dir, 'dist', 'worker.js'),
      external: EXTERNAL,
      minify: true,
      keepNames: true,
      legalComments: 'none',
      logLevel: 'warning',
    });
    const { version } = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf-8'));
    writeFileSync(
      join(out, dir, 'package.json'),
      JSON.stringify({ name, version, type: 'commonjs', private: true }) + '\n',
    );
  }
}

// tfjs-backend-wasm finds its .wasm files next to its own module (__dirname, mirrored above).
// The threaded build is left out: tfjs reports WASM_HAS_MULTITHREAD_SUPPORT false under Node.
function wasmBinaries(out, inputs) {
  let wasm = 0;
  for (const i of inputs) {
    if (!/tfjs-backend-wasm\/dist\/[^/]+\.js$/.test(i)) continue;
    const dir = posix.dirname(i);
    for (const f of readdirSync(join(ROOT, dir)).filter((n) => n.endsWith('.wasm') && !n.includes('threaded'))) {
      if (!existsSync(join(out, dir, f))) wasm++;
      copyInto(out, join(ROOT, dir, f), `${dir}/${f}`);
    }
  }
  if (wasm === 0) die('no tfjs-backend-wasm module in the bundle: where did the wasm backend go?');
}

// webgpu: ESM that createRequire()s dist/<platform>-<arch>/dawn.node beside itself. Its declared
// dependencies are types (@webgpu/types) and its build scripts' logger (debug): index.js itself
// imports node built-ins only, which is checked here so a new version cannot slip a dependency in.
function dawnAddon(out) {
  const dir = join(ROOT, 'node_modules', 'webgpu');
  if (!existsSync(dir)) die('node_modules/webgpu is missing (npm ci?)');
  const index = readFileSync(join(dir, 'index.js'), 'utf-8');
  const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
  for (const m of index.matchAll(/(?:from\s+|import\(\s*|require\(\s*)(['"])([^'"]+)\1/g)) {
    if (!builtins.has(m[2])) die(`node_modules/webgpu/index.js imports '${m[2]}': copy it into the bundle too`);
  }
  for (const f of ['package.json', 'index.js', 'LICENSE.md', `dist/${DAWN_PLATFORM}/dawn.node`]) {
    if (existsSync(join(dir, f))) copyInto(out, join(dir, f), `node_modules/webgpu/${f}`);
    else if (f.endsWith('.node')) die(`node_modules/webgpu/${f} is missing`);
  }
}

/**
 * Versions of what was bundled, where env.json looks them up (createRequire(PROJECT_ROOT)): the
 * project's direct dependencies, as a package.json with name and version only. Returns name → version.
 */
export function writeVersionRecords(out, pkgs, own) {
  const bundled = {};
  for (const [dir, name] of pkgs) {
    if (!(name in (own.dependencies ?? {})) || dir !== `node_modules/${name}`) continue;
    const { version } = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf-8'));
    bundled[name] = version;
    const pj = join(out, dir, 'package.json');
    if (!existsSync(pj)) {
      mkdirSync(dirname(pj), { recursive: true });
      writeFileSync(
        pj,
        JSON.stringify({
          name,
          version,
          private: true,
          description: 'bundled into sdd.mjs; kept for the version record only',
        }) + '\n',
      );
    }
  }
  return bundled;
}
