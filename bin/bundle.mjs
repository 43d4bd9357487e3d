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
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, extname, join, posix, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const LIMIT_MB = 40;
/**
 * Loaded at run time from DIR/node_modules or not at all: each backend's own (the Dawn addon, the
 * optional tfjs-node packages; src/backend/choices.ts, read without loading tfjs) and piscina's
 * optional thread-priority addon.
 */
const { BACKENDS } = await tsImport('../src/backend/choices.ts', import.meta.url);
const EXTERNAL = [...new Set([...BACKENDS.flatMap((b) => b.bundleExternal), '@napi-rs/nice'])];
/**
 * Reports stay out (resvg's native PNG renderer and vega's browser bundles would break the
 * budget): loading the report code fails with one line and exit 2, while --no-report runs work.
 */
const NOT_BUNDLED = {
  '@resvg/resvg-js': {
    exports: ['Resvg'],
    message:
      'reports are not part of the offline bundle (no PNG renderer or vega files in it): run with --no-report ' +
      '(or SDD_REPORT=0), then `sdd report` on the run store from a checkout where `npm ci` ran',
  },
};
/** Where worker entries are looked for (new URL('./x.mjs', import.meta.url) in these trees). */
const SOURCE_DIRS = ['src', 'datasets', 'baselines'];
/** Files copied as they are (paths relative to the repository; folders copied whole, .ts left out). */
const DATA = ['experiments', 'datasets/toyfaces/zoo', 'datasets/paper/configs', 'datasets/paper/tokenizer'];
/** Only this platform's Dawn build fits the size budget. */
const DAWN_PLATFORM = 'linux-x64';

function die(msg) {
  process.stderr.write(`bundle: ${msg}\n`);
  process.exit(1);
}

const argv = process.argv.slice(2);
let OUT = join(ROOT, 'dist');
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--out' && argv[i + 1]) OUT = resolve(argv[++i]);
  else die(`unknown argument '${argv[i]}' (usage: node bin/bundle.mjs [--out DIR])`);
}
if (OUT === ROOT || ROOT.startsWith(OUT + sep)) die(`--out ${OUT} would hold the repository itself`);

/** `a/b/c` whatever the OS. */
const rel = (p) => relative(ROOT, p).split(sep).join('/');

/** The files under dir; node_modules and dot folders are skipped unless `everything`. */
function walk(dir, everything = false, out = []) {
  if (!existsSync(dir)) return out;
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) {
      if (everything || (d.name !== 'node_modules' && !d.name.startsWith('.'))) walk(p, everything, out);
    } else out.push(p);
  }
  return out;
}

function copyInto(src, relDest) {
  const dest = join(OUT, relDest);
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(src, dest);
}

// ---------------------------------------------------------------------------------------------
// Extra entry points, found in the sources (tests left out):
// - worker entries: every `new URL('./x.mjs', import.meta.url)`; a non-script target is copied as data;
// - task modules: a module whose own URL escapes (`export const TASKS = import.meta.url`, for a pool's
//   workers to import) must exist as a file of its own: it is bundled to its path with .mjs, and
//   its import.meta.url names that file.
// Every use of import.meta.url other than new URL(lit, ·), fileURLToPath(·) and createRequire(·)
// counts as escaping. With code splitting each module still exists once per thread, so a task
// module imported by a worker registers into the same registry as the worker's own modules.
const URL_REF = /new\s+URL\(\s*(['"`])(\.\.?\/[^'"`$]+?)\1\s*,\s*import\.meta\.url\s*\)/g;
const PATH_USE = /\b(?:createRequire|fileURLToPath)\(\s*import\.meta\.url\s*\)/g;
const stripComments = (src) => src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|\s)\/\/.*$/gm, '$1');
/** Source file → its output path relative to OUT (without extension). */
const extraEntries = new Map();
const urlAssets = new Set();
for (const dir of SOURCE_DIRS) {
  for (const file of walk(join(ROOT, dir))) {
    if (!/\.(m|c)?[jt]s$/.test(file) || /\.test\.[mc]?[jt]s$/.test(file) || file.endsWith('.d.ts')) continue;
    const code = stripComments(readFileSync(file, 'utf-8'));
    for (const m of code.matchAll(URL_REF)) {
      const target = resolve(dirname(file), m[2]);
      if (!existsSync(target)) die(`${rel(file)} refers to ${m[2]}, which does not exist`);
      if (/\.(mjs|js)$/.test(target)) extraEntries.set(target, rel(target).replace(/\.m?js$/, ''));
      else if (/\.(cjs|[mc]?ts)$/.test(target))
        die(`${rel(file)}: worker entry ${m[2]} must be an .mjs file (a .ts or .cjs one cannot run at its own path)`);
      else urlAssets.add(target);
    }
    if (/\bimport\.meta\.url\b/.test(code.replace(URL_REF, '').replace(PATH_USE, ''))) {
      extraEntries.set(file, rel(file).replace(/\.[mc]?[jt]s$/, ''));
    }
  }
}
const outOf = new Map(extraEntries); // source → output (no extension), the CLI included below
outOf.set(join(ROOT, 'bin', 'sdd.mjs'), 'sdd');
// The GPU checks (gpu-check.sh) run from the bundle too: bench-gpu and the webgpu conformance set.
outOf.set(join(ROOT, 'bench', 'gpu.ts'), 'bench/gpu');
outOf.set(join(ROOT, 'bench', 'attention.ts'), 'bench/attention');
outOf.set(join(ROOT, 'bench', 'full_parity.ts'), 'bench/full_parity');
outOf.set(join(ROOT, 'bench', 'stylegan2_parity.ts'), 'bench/stylegan2_parity');
outOf.set(join(ROOT, 'bench', 'paper_time.ts'), 'bench/paper_time');
outOf.set(join(ROOT, 'bench', 'webgpu_counts.ts'), 'bench/webgpu_counts');
outOf.set(join(ROOT, 'test', 'webgpu_attention.test.ts'), 'test/webgpu_attention.test');
outOf.set(join(ROOT, 'test', 'webgpu_conformance.test.ts'), 'test/webgpu_conformance.test');
{
  const seen = new Map();
  for (const [src, out] of outOf) {
    if (seen.has(out)) die(`${rel(src)} and ${rel(seen.get(out))} would both be bundled to ${out}.mjs`);
    seen.set(out, src);
  }
}

// ---------------------------------------------------------------------------------------------
// The plugin: tsx is not needed once everything is JavaScript, and module-relative paths are
// redirected into OUT.
const LOADERS = {
  '.ts': 'ts',
  '.mts': 'ts',
  '.cts': 'ts',
  '.tsx': 'tsx',
  '.js': 'js',
  '.mjs': 'js',
  '.cjs': 'js',
  '.jsx': 'jsx',
};
/**
 * import('pkg') with a literal package name (not relative, not node:), and what precedes it (to
 * skip `typeof import(…)` types).
 */
const DYNAMIC_PKG_IMPORT = /(\btypeof\s*|[^.\w$]|^)(import\(\s*(['"])(?!node:|\.)[^'"]+\3\s*\))/g;
const declares = (src, name) => new RegExp(`(?:var|let|const|function)\\s+${name}\\b`).test(src);
let rewritten = 0;

const mirrorPlugin = {
  name: 'sdd-mirror',
  setup(b) {
    // The .mjs entries register tsx before importing .ts files; in the bundle there is nothing to register.
    b.onResolve({ filter: /^tsx(\/.*)?$/ }, () => ({ path: 'tsx', namespace: 'sdd-stub' }));
    for (const name of Object.keys(NOT_BUNDLED)) {
      b.onResolve({ filter: new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`) }, () => ({
        path: name,
        namespace: 'sdd-stub',
      }));
    }
    b.onLoad({ filter: /.*/, namespace: 'sdd-stub' }, (args) =>
      args.path === 'tsx'
        ? {
            contents:
              'export function register() { return async () => {}; }\nexport const tsImport = (s) => import(s);\n',
            loader: 'js',
          }
        : {
            // Thrown when the module that needs it loads (a dynamic import: the report code), as the CLI's UserError.
            contents:
              `import { UserError } from './src/errors.ts';\nthrow new UserError(${JSON.stringify(NOT_BUNDLED[args.path].message)});\n` +
              NOT_BUNDLED[args.path].exports.map((e) => `export const ${e} = undefined;\n`).join(''),
            loader: 'ts',
            resolveDir: ROOT,
          },
    );
    b.onLoad({ filter: /\.(m|c)?[jt]sx?$/ }, (args) => {
      let src = readFileSync(args.path, 'utf-8');
      const file = rel(args.path);
      if (file.startsWith('..')) return undefined; // outside the repository: leave as it is
      const usesMeta = /\bimport\.meta\.(url|dirname|filename)\b/.test(src);
      const usesDir = /\b__(dirname|filename)\b/.test(src);
      const ours = !/(^|\/)node_modules\//.test(file);
      const usesPkgImport = ours && new RegExp(DYNAMIC_PKG_IMPORT.source).test(src);
      if (!usesMeta && !usesDir && !usesPkgImport) return undefined;
      const dir = posix.dirname(file);
      if (usesPkgImport) {
        // esbuild's code splitting hands a CommonJS package to import() as { default: module.exports }
        // only (evanw/esbuild#3245); Node also gives its named exports. __sdd_cjs adds them back.
        src = src.replace(DYNAMIC_PKG_IMPORT, (m, pre, call) =>
          /\btypeof\s*$/.test(pre) ? m : `${pre}${call}.then(__sdd_cjs)`,
        );
      }
      if (usesMeta) {
        // An entry's URL is its output file's (a task module is imported by that URL).
        const self = outOf.has(args.path) ? `${outOf.get(args.path)}.mjs` : file;
        src = src
          .replace(/\bimport\.meta\.url\b/g, `__sdd_url(${JSON.stringify(self)})`)
          .replace(/\bimport\.meta\.filename\b/g, `__sdd_path(${JSON.stringify(self)})`)
          .replace(/\bimport\.meta\.dirname\b/g, `__sdd_path(${JSON.stringify(dir + '/')})`);
      }
      if (usesDir && !declares(src, '__dirname') && !declares(src, '__filename')) {
        // After a shebang and the directive prologue, so "use strict" stays a directive.
        const head = /^(#![^\n]*\n)?(\s*(?:(?:\/\/[^\n]*\n|\/\*[\s\S]*?\*\/)\s*)*(['"])use strict\3;?)?/.exec(src)[0];
        const decl = `\nvar __dirname = __sdd_path(${JSON.stringify(dir + '/')}).replace(/\\/$/, ''), __filename = __sdd_path(${JSON.stringify(file)});\n`;
        src = head + decl + src.slice(head.length);
      }
      rewritten++;
      return { contents: src, loader: LOADERS[extname(args.path)] ?? 'js' };
    });
  },
};

/** The header of each ESM output: OUT found from the file's own URL, and a `require` for esbuild's CJS shims. */
function header(outFile, isEntry) {
  let up = posix.relative(posix.dirname(rel2(outFile)), '.') || '.';
  up += '/';
  return [
    "import { createRequire as __sdd_createRequire } from 'node:module';",
    "import { fileURLToPath as __sdd_fileURLToPath } from 'node:url';",
    'const require = __sdd_createRequire(import.meta.url);',
    `const __sdd_root = new URL(${JSON.stringify(up)}, import.meta.url);`,
    'const __sdd_url = (p) => new URL(p, __sdd_root).href;',
    'const __sdd_path = (p) => __sdd_fileURLToPath(new URL(p, __sdd_root));',
    // A namespace holding only `default` (a CommonJS chunk) gets the exports' keys beside it, as in Node.
    'const __sdd_cjs = (m) => { const k = Object.keys(m), d = m.default; if (k.length !== 1 || k[0] !== "default" || d === null || (typeof d !== "object" && typeof d !== "function")) return m;' +
      ' const ns = { default: d }; for (const key of Object.keys(d)) if (key !== "default") Object.defineProperty(ns, key, { enumerable: true, get: () => d[key] }); return ns; };',
    ...(isEntry ? ["process.env.SDD_BUNDLE_DIR = __sdd_path('.').replace(/\\/$/, '');"] : []),
    '',
  ].join('\n');
}
const rel2 = (p) => relative(OUT, p).split(sep).join('/');

// ---------------------------------------------------------------------------------------------
const t0 = Date.now();
rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });

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
  plugins: [mirrorPlugin],
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
  text = shebang + header(f.path, entryOuts.has(f.path)) + text.slice(shebang.length);
  writeFileSync(f.path, text);
}
const main = join(OUT, 'sdd.mjs');
if (!readFileSync(main, 'utf-8').startsWith('#!'))
  writeFileSync(main, '#!/usr/bin/env node\n' + readFileSync(main, 'utf-8'));
chmodSync(main, 0o755);

// Child runs (executor, regress) start PROJECT_ROOT/bin/sdd.mjs.
mkdirSync(join(OUT, 'bin'), { recursive: true });
writeFileSync(
  join(OUT, 'bin', 'sdd.mjs'),
  "#!/usr/bin/env node\n// Child runs start this path; the CLI is ../sdd.mjs.\nimport '../sdd.mjs';\n",
);
chmodSync(join(OUT, 'bin', 'sdd.mjs'), 0o755);

const inputs = Object.keys(result.metafile.inputs);
/** The package folder (relative to ROOT) of every bundled node_modules file. */
const bundledPkgs = new Map();
for (const i of inputs) {
  const m = /^(.*node_modules\/(@[^/]+\/[^/]+|[^/]+))\//.exec(i);
  if (m) bundledPkgs.set(m[1], m[2]);
}

// ---------------------------------------------------------------------------------------------
// piscina starts its own dist/worker.js (resolve(__dirname, 'worker.js')) in each thread, which
// then imports our worker entry: bundle it at its mirrored path, as CommonJS.
for (const [dir, name] of bundledPkgs) {
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
    outfile: join(OUT, dir, 'dist', 'worker.js'),
    external: EXTERNAL,
    minify: true,
    keepNames: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const { version } = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf-8'));
  writeFileSync(
    join(OUT, dir, 'package.json'),
    JSON.stringify({ name, version, type: 'commonjs', private: true }) + '\n',
  );
}

// tfjs-backend-wasm finds its .wasm files next to its own module (__dirname, mirrored above).
// The threaded build is left out: tfjs reports WASM_HAS_MULTITHREAD_SUPPORT false under Node.
let wasm = 0;
for (const i of inputs) {
  if (!/tfjs-backend-wasm\/dist\/[^/]+\.js$/.test(i)) continue;
  const dir = posix.dirname(i);
  for (const f of readdirSync(join(ROOT, dir)).filter((n) => n.endsWith('.wasm') && !n.includes('threaded'))) {
    if (!existsSync(join(OUT, dir, f))) wasm++;
    copyInto(join(ROOT, dir, f), `${dir}/${f}`);
  }
}
if (wasm === 0) die('no tfjs-backend-wasm module in the bundle: where did the wasm backend go?');

// yargs reads its messages from ../../locales next to its ESM shim.
for (const [dir, name] of bundledPkgs) {
  if (name !== 'yargs' || !existsSync(join(ROOT, dir, 'locales'))) continue;
  for (const f of readdirSync(join(ROOT, dir, 'locales')))
    copyInto(join(ROOT, dir, 'locales', f), `${dir}/locales/${f}`);
}

// webgpu: ESM that createRequire()s dist/<platform>-<arch>/dawn.node beside itself. Its declared
// dependencies are types (@webgpu/types) and its build scripts' logger (debug): index.js itself
// imports node built-ins only, which is checked here so a new version cannot slip a dependency in.
{
  const dir = join(ROOT, 'node_modules', 'webgpu');
  if (!existsSync(dir)) die('node_modules/webgpu is missing (npm ci?)');
  const index = readFileSync(join(dir, 'index.js'), 'utf-8');
  const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
  for (const m of index.matchAll(/(?:from\s+|import\(\s*|require\(\s*)(['"])([^'"]+)\1/g)) {
    if (!builtins.has(m[2])) die(`node_modules/webgpu/index.js imports '${m[2]}': copy it into the bundle too`);
  }
  for (const f of ['package.json', 'index.js', 'LICENSE.md', `dist/${DAWN_PLATFORM}/dawn.node`]) {
    if (existsSync(join(dir, f))) copyInto(join(dir, f), `node_modules/webgpu/${f}`);
    else if (f.endsWith('.node')) die(`node_modules/webgpu/${f} is missing`);
  }
}

// Versions of what was bundled, where env.json looks them up (createRequire(PROJECT_ROOT)):
// the project's direct dependencies, as a package.json with name and version only.
const own = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf-8'));
const bundled = {};
for (const [dir, name] of bundledPkgs) {
  if (!(name in (own.dependencies ?? {})) || dir !== `node_modules/${name}`) continue;
  const { version } = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf-8'));
  bundled[name] = version;
  const pj = join(OUT, dir, 'package.json');
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

// Data: the zoo and the experiments, plus any non-script file named by new URL(…, import.meta.url).
for (const d of DATA) {
  const files = walk(join(ROOT, d)).filter((f) => !/\.[mc]?ts$/.test(f));
  if (files.length === 0) die(`${d} is empty or missing`);
  for (const f of files) copyInto(f, rel(f));
}
for (const f of urlAssets) copyInto(f, rel(f));
// The torch engine (python/sdd_torch, found at PROJECT_ROOT/python) and the device parity checks
// gpu-check.sh runs (python/tests: the twins on CUDA against the CPU, at toyfaces and full size).
for (const f of walk(join(ROOT, 'python', 'sdd_torch')).filter((p) => p.endsWith('.py') && !p.includes('__pycache__')))
  copyInto(f, rel(f));
for (const f of ['__init__.py', 'models_parity.py', 'device_parity.py', 'sd_parity.py', 'gan_parity.py'])
  copyInto(join(ROOT, 'python', 'tests', f), `python/tests/${f}`);
// The GPU check script and bench-gpu's PyTorch twins (run by bench/gpu.mjs from PROJECT_ROOT/bench).
copyInto(join(ROOT, 'bin', 'gpu-check.sh'), 'gpu-check.sh');
chmodSync(join(OUT, 'gpu-check.sh'), 0o755);
for (const f of ['unet_torch.py', 'gpu_torch.py', 'attention_torch.py', 'paper_time_torch.py'])
  copyInto(join(ROOT, 'bench', f), `bench/${f}`);
// Full-size parity on a GPU host (tools/make_full_parity.py, then bench/full_parity.mjs): the Python
// side with what it imports and reads (the tokenizer fixture); the reference checkouts come separately.
// StyleGAN2's full-size parity (tools/make_stylegan2_fixture.py --full, then bench/stylegan2_parity.mjs).
for (const f of [
  'make_full_parity.py',
  'make_clip_fixture.py',
  'make_sd_fixture.py',
  'st_io.py',
  'make_stylegan2_fixture.py',
  'synthetic_weights.py',
  'convert_stylegan2.py',
])
  copyInto(join(ROOT, 'tools', f), `tools/${f}`);
for (const f of walk(join(ROOT, 'tools', 'refstubs')).filter((p) => !p.includes('__pycache__'))) copyInto(f, rel(f));
for (const f of walk(join(ROOT, 'test', 'fixtures', 'clip_tokenizer'))) copyInto(f, rel(f));

const git = (...a) => {
  try {
    return execFileSync('git', a, { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return null;
  }
};
const sha = git('rev-parse', 'HEAD');
const dirty = sha === null ? null : (git('status', '--porcelain', '--untracked-files=no') ?? '') !== '';
writeFileSync(
  join(OUT, 'package.json'),
  JSON.stringify(
    {
      name: own.name,
      version: own.version,
      private: true,
      description: `${own.description} — offline bundle (node bin/bundle.mjs); run: node sdd.mjs --help`,
      bin: { sdd: 'sdd.mjs' },
      engines: own.engines,
      sddBundle: { gitSha: sha, dirty, builtAt: new Date().toISOString(), platform: DAWN_PLATFORM, bundled },
    },
    null,
    2,
  ) + '\n',
);

// ---------------------------------------------------------------------------------------------
// Nothing may point back into this checkout: the bundle must work after being copied elsewhere.
const leaks = [];
for (const f of walk(OUT, true)) {
  if (!/\.(mjs|js|json)$/.test(f)) continue;
  const text = readFileSync(f, 'utf-8');
  if (text.includes(ROOT)) leaks.push(rel2(f));
  if (/\.m?js$/.test(f) && /\bimport\.meta\.(dirname|filename)\b/.test(text))
    leaks.push(`${rel2(f)} (import.meta.dirname/filename)`);
}
if (leaks.length) die(`absolute paths of ${ROOT} in: ${leaks.join(', ')}`);

// Sizes in MB (10⁶ bytes), the unit of the budget; du's count (whole blocks) is the one checked.
const mb = (b) => `${(b / 1e6).toFixed(1)} MB`;
const groups = [
  ['code (sdd.mjs, lib/, workers)', (f) => /\.(mjs|js)$/.test(f) && !f.startsWith('node_modules/webgpu/')],
  ['webgpu addon (dawn.node)', (f) => f.startsWith('node_modules/webgpu/')],
  ['tfjs wasm binaries', (f) => f.endsWith('.wasm')],
  ['toyfaces zoo', (f) => f.startsWith('datasets/toyfaces/zoo/')],
  ['experiments', (f) => f.startsWith('experiments/')],
  ['torch engine (python/)', (f) => f.startsWith('python/')],
  ['other (package.json, locales)', () => true],
];
const sums = groups.map(() => 0);
let totalBytes = 0;
const all = walk(OUT, true);
for (const f of all) {
  const size = statSync(f).size;
  totalBytes += size;
  sums[groups.findIndex(([, match]) => match(rel2(f)))] += size;
}
groups.forEach(([label], i) => process.stdout.write(`  ${label.padEnd(32)} ${mb(sums[i]).padStart(9)}\n`));
let du = null;
try {
  du = Number(execFileSync('du', ['-sk', OUT]).toString().split(/\s/)[0]) * 1024;
} catch {
  /* no du: the byte count stands */
}
const onDisk = Math.max(totalBytes, du ?? 0);
process.stdout.write(
  `bundle: ${OUT.startsWith(ROOT + sep) ? rel(OUT) : OUT} — ${mb(totalBytes)} in ${all.length} files${du ? `, ${mb(du)} on disk (du)` : ''} ` +
    `(budget ${LIMIT_MB} MB), built in ${((Date.now() - t0) / 1000).toFixed(1)} s\n` +
    `  entries: ${[...outOf.values()].map((o) => `${o}.mjs`).join(', ')}; ${rewritten} modules relocated\n`,
);
if (onDisk > LIMIT_MB * 1e6) die(`${mb(onDisk)} is over the ${LIMIT_MB} MB budget`);
