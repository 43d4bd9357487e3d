#!/usr/bin/env node
// `make bundle`: an offline copy of the CLI for machines with a plain Node 20 and no npm.
//
//   node bin/bundle.mjs [--out DIR]      (default DIR: dist/)
//
// The output mirrors the repository's layout, so every path the code computes from its own
// location (PROJECT_ROOT from import.meta.url, worker entries next to their spawner, the zoo under
// datasets/, piscina's worker.js and the tfjs wasm binaries next to their modules) lands on a file
// of the bundle, not of the repository:
//
//   DIR/sdd.mjs                         the CLI (esbuild, ESM, node20, shebang)
//   DIR/lib/*.mjs                       code shared by the CLI and its workers (esbuild chunks)
//   DIR/bin/sdd.mjs                     `import '../sdd.mjs'`: child runs start PROJECT_ROOT/bin/sdd.mjs
//   DIR/src/**/<worker>.mjs             every worker entry named as new URL('./x.mjs', import.meta.url)
//   DIR/{src,datasets}/**/<module>.mjs  every task module (one that hands out its own import.meta.url
//                                       for pool workers to import), e.g. src/train/data_parallel.mjs
//   DIR/node_modules/piscina/dist/worker.js                 piscina's own thread entry (CJS)
//   DIR/node_modules/@tensorflow/tfjs-backend-wasm/dist/*.wasm
//   DIR/node_modules/webgpu/            the Dawn addon (linux-x64 only), left external
//   DIR/datasets/toyfaces/zoo/          the shipped weights and cards
//   DIR/experiments/                    the experiment files
//   DIR/package.json                    version, git sha of the build, versions of bundled packages
//
// How: an esbuild plugin rewrites `import.meta.url` (and `import.meta.dirname/filename`) in every
// bundled module to the URL its file would have in DIR, and gives CommonJS modules that use
// __dirname/__filename the mirrored values; each output file starts with a header that finds DIR
// from its own URL. The entry also sets process.env.SDD_BUNDLE_DIR, which child processes and
// worker threads inherit. Reports (vega → resvg PNGs) are not bundled: runs take --no-report.
// Output is minified (names kept, for stack traces); DIR must stay under 40 MB, checked at the end.
//
// The parts, under bin/bundle/: entries.mjs (what is bundled), mirror.mjs (the esbuild plugin and
// the output header), packages.mjs (package files beside the code), data.mjs (files copied as
// they are, package.json), check.mjs (no paths into the checkout; the size budget).
import { build } from 'esbuild';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { die, EXTERNAL, rel, ROOT } from './bundle/common.mjs';
import { findEntries } from './bundle/entries.mjs';
import { header, mirrorPlugin } from './bundle/mirror.mjs';
import { bundledPackages, copyPackageFiles, writeVersionRecords } from './bundle/packages.mjs';
import { copyData, copyGpuChecks, ownPackage, writeManifest } from './bundle/data.mjs';
import { checkNoLeaks, LIMIT_MB, mb, measureSizes } from './bundle/check.mjs';

const argv = process.argv.slice(2);
let OUT = join(ROOT, 'dist');
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--out' && argv[i + 1]) OUT = resolve(argv[++i]);
  else die(`unknown argument '${argv[i]}' (usage: node bin/bundle.mjs [--out DIR])`);
}
if (OUT === ROOT || ROOT.startsWith(OUT + sep)) die(`--out ${OUT} would hold the repository itself`);

/** esbuild's bundle of every entry into OUT, code split into lib/ chunks; returns its metafile's inputs. */
async function bundleCode(outOf, plugin) {
  const entryPoints = [...outOf].map(([src, out]) => ({ in: src, out }));
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints,
    bundle: true,
    splitting: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    outdir: OUT,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'lib/[name]-[hash]',
    external: EXTERNAL,
    plugins: [plugin],
    minify: true,
    keepNames: true, // error classes and stack traces keep their names
    legalComments: 'none',
    metafile: true,
    write: false,
    logLevel: 'warning',
  });
  const entryOuts = new Set(entryPoints.map((e) => join(OUT, `${e.out}.mjs`)));
  for (const f of result.outputFiles) {
    mkdirSync(dirname(f.path), { recursive: true });
    if (!f.path.endsWith('.mjs')) {
      writeFileSync(f.path, f.contents);
      continue;
    }
    let text = f.text;
    const shebang = text.startsWith('#!') ? text.slice(0, text.indexOf('\n') + 1) : '';
    text = shebang + header(rel(f.path, OUT), entryOuts.has(f.path)) + text.slice(shebang.length);
    writeFileSync(f.path, text);
  }
  return Object.keys(result.metafile.inputs);
}

/** OUT/sdd.mjs runnable, and OUT/bin/sdd.mjs, the path child runs (executor, regress) start. */
function cliExecutables() {
  const main = join(OUT, 'sdd.mjs');
  if (!readFileSync(main, 'utf-8').startsWith('#!'))
    writeFileSync(main, '#!/usr/bin/env node\n' + readFileSync(main, 'utf-8'));
  chmodSync(main, 0o755);
  mkdirSync(join(OUT, 'bin'), { recursive: true });
  writeFileSync(
    join(OUT, 'bin', 'sdd.mjs'),
    "#!/usr/bin/env node\n// Child runs start this path; the CLI is ../sdd.mjs.\nimport '../sdd.mjs';\n",
  );
  chmodSync(join(OUT, 'bin', 'sdd.mjs'), 0o755);
}

const { outOf, urlAssets } = findEntries();
const mirror = mirrorPlugin(outOf);
const t0 = Date.now();
rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
const inputs = await bundleCode(outOf, mirror.plugin);
cliExecutables();
const pkgs = bundledPackages(inputs);
await copyPackageFiles(OUT, inputs, pkgs);
const own = ownPackage();
const bundled = writeVersionRecords(OUT, pkgs, own);
copyData(OUT, urlAssets);
copyGpuChecks(OUT);
writeManifest(OUT, own, bundled);

checkNoLeaks(OUT);
const { totalBytes, files, du } = measureSizes(OUT);
const onDisk = Math.max(totalBytes, du ?? 0);
process.stdout.write(
  `bundle: ${OUT.startsWith(ROOT + sep) ? rel(OUT) : OUT} — ${mb(totalBytes)} in ${files} files${du ? `, ${mb(du)} on disk (du)` : ''} ` +
    `(budget ${LIMIT_MB} MB), built in ${((Date.now() - t0) / 1000).toFixed(1)} s\n` +
    `  entries: ${[...outOf.values()].map((o) => `${o}.mjs`).join(', ')}; ${mirror.relocated()} modules relocated\n`,
);
if (onDisk > LIMIT_MB * 1e6) die(`${mb(onDisk)} is over the ${LIMIT_MB} MB budget`);
