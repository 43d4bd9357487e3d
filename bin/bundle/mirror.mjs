// The esbuild plugin of `make bundle`: tsx is not needed once everything is JavaScript, reports
// are stubbed out, and module-relative paths are redirected into OUT (`import.meta.url` and
// `import.meta.dirname/filename` become the URL the file has in OUT; CommonJS modules that use
// __dirname/__filename get the mirrored values). Each output file starts with `header`, which
// finds OUT from the file's own URL.
import { readFileSync } from 'node:fs';
import { extname, posix } from 'node:path';
import { rel, ROOT } from './common.mjs';

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

/** The stubs' sources: tsx's API (nothing to register), and a module that refuses to load. */
function stub(path) {
  if (path === 'tsx')
    return {
      contents: 'export function register() { return async () => {}; }\nexport const tsImport = (s) => import(s);\n',
      loader: 'js',
    };
  return {
    // Thrown when the module that needs it loads (a dynamic import: the report code), as the CLI's UserError.
    contents:
      `import { UserError } from './src/errors.ts';\nthrow new UserError(${JSON.stringify(NOT_BUNDLED[path].message)});\n` +
      NOT_BUNDLED[path].exports.map((e) => `export const ${e} = undefined;\n`).join(''),
    loader: 'ts',
    resolveDir: ROOT,
  };
}

/**
 * The plugin, for the entries `outOf` (source → output without extension); `relocated()` counts
 * the modules it rewrote.
 */
export function mirrorPlugin(outOf) {
  let rewritten = 0;
  const plugin = {
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
      b.onLoad({ filter: /.*/, namespace: 'sdd-stub' }, (args) => stub(args.path));
      b.onLoad({ filter: /\.(m|c)?[jt]sx?$/ }, (args) => {
        const contents = relocate(args.path, outOf);
        if (contents === undefined) return undefined;
        rewritten++;
        return { contents, loader: LOADERS[extname(args.path)] ?? 'js' };
      });
    },
  };
  return { plugin, relocated: () => rewritten };
}

/** A module's source with its own location redirected into OUT, or undefined when nothing needs it. */
function relocate(path, outOf) {
  let src = readFileSync(path, 'utf-8');
  const file = rel(path);
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
    const self = outOf.has(path) ? `${outOf.get(path)}.mjs` : file;
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
  return src;
}

/**
 * The header of each ESM output (`relOut`: its path in OUT): OUT found from the file's own URL, and
 * a `require` for esbuild's CJS shims.
 */
export function header(relOut, isEntry) {
  let up = posix.relative(posix.dirname(relOut), '.') || '.';
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
