/**
 * Import direction of the layers, checked by `make layers` (part of `make test`):
 *
 *   npx depcruise src baselines datasets bin --config .dependency-cruiser.cjs
 *
 * A module may import its own layer and the layers below it, never one above. Top to bottom:
 *
 *   cli        src/cli, bin/                     the commands; the only layer that may name a world's files
 *   reports    src/reports, src/regress          pages and regression reports over finished runs; only the
 *                                                cli imports them, they import exec-level code (runs,
 *                                                experiments), so they sit just under the cli
 *   exec       src/exec, src/experiments,        running experiments: files → planned runs → executor →
 *              src/runs                          run store (runs/store.ts and experiments/expand.ts know
 *                                                each other, so they share the layer)
 *   methods    src/methods, baselines/           the methods and their registry (methods/index.ts
 *                                                registers the baselines)
 *   sdd        src/sdd, src/eval                 SDD's algorithm; the evaluation of edits
 *   world      src/world, src/diffusion,         the world registry and types (src/world), samplers and
 *              src/metrics, datasets/            schedulers, metrics; datasets/ holds the worlds
 *                                                themselves (toyfaces), which build on every layer below
 *   train      src/train                         data-parallel training and checkpoints: imports only nn,
 *                                                backend and util; used by the worlds' model zoos
 *   nn         src/nn                            layers, parameters, models, optimizers
 *   backend    src/backend                       tfjs backends, kernels, the worker pool and its task registry
 *   util       src/util, src/errors.ts           leaf helpers (project root and machine facts, the progress bar)
 *                                                and the error classes
 *
 * Every layer is a set of folders (src/errors.ts is the one file at the top of src/): the folder a
 * module lives in says its layer. No module may be part of an import cycle (`no-circular`): a cycle
 * makes the load order decide which side sees the other's exports as undefined.
 *
 * Worlds (datasets/) and baselines register themselves so that lower layers never import them:
 * src/world/registry.ts is the only place in src/ outside the cli that imports datasets/, and
 * src/methods/index.ts the only one that imports baselines/. src/backend additionally may never
 * import datasets/ or src/train/ (its pool runs their tasks through registerWorkerTask; see
 * src/backend/task_registry.ts).
 *
 * Type-only imports count: a type import from a higher layer still couples the lower layer to it
 * (it breaks when the higher layer changes, and it is how value imports start). `declare module`
 * augmentations of WorkerTasks point downwards (a task's owner augments the backend's registry),
 * so they are fine either way.
 *
 * Test files (*.test.ts) and test/ are exempt: nothing imports a test, so a test cannot make a
 * lower layer depend on a higher one, and integration tests deliberately use higher layers and the
 * toyfaces world as fixtures. bench/ is not checked either (benchmarks wire the whole stack).
 *
 * Worlds register what lower layers use by name: data-parallel model losses (src/nn/models.ts
 * registry, datasets/<world>/train/register.ts), worker tasks (src/backend/task_registry.ts) and
 * FID feature extractors (src/metrics/features.ts, registered through src/world/registry.ts).
 */

/** Layers, top to bottom: `dirs` are path prefixes, `files` single modules placed by file. */
const LAYERS = [
  { name: 'cli', dirs: ['src/cli/', 'bin/'] },
  { name: 'reports', dirs: ['src/reports/', 'src/regress/'] },
  { name: 'exec', dirs: ['src/exec/', 'src/experiments/', 'src/runs/'] },
  { name: 'methods', dirs: ['src/methods/', 'baselines/'] },
  { name: 'sdd', dirs: ['src/sdd/', 'src/eval/'] },
  { name: 'world', dirs: ['src/world/', 'src/diffusion/', 'src/metrics/', 'datasets/'] },
  { name: 'train', dirs: ['src/train/'] },
  { name: 'nn', dirs: ['src/nn/'] },
  { name: 'backend', dirs: ['src/backend/'] },
  { name: 'util', dirs: ['src/util/'], files: ['src/errors.ts'] },
];

const TESTS = ['\\.test\\.ts$', '^test/'];
const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const dirRe = (d) => `^${esc(d)}`;
const fileRe = (f) => `^${esc(f)}$`;
/** Files placed by file in some layer: they are not part of the layer their folder is in. */
const placedFiles = (except) => LAYERS.filter((l) => l !== except).flatMap((l) => (l.files ?? []).map(fileRe));
/** What is in layer `l`: { path, pathNot } for a rule's `from`. */
const inLayer = (l) => ({
  path: [...l.dirs.map(dirRe), ...(l.files ?? []).map(fileRe)],
  pathNot: [...placedFiles(l), ...TESTS],
});
/** What is above layer index `i`: { path, pathNot } for a rule's `to`. */
const above = (i) => {
  const higher = LAYERS.slice(0, i);
  const lowerOrSame = LAYERS.slice(i);
  return {
    path: higher.flatMap((l) => [...l.dirs.map(dirRe), ...(l.files ?? []).map(fileRe)]),
    pathNot: lowerOrSame.flatMap((l) => (l.files ?? []).map(fileRe)),
  };
};
const ALL = LAYERS.flatMap((l) => [...l.dirs.map(dirRe), ...(l.files ?? []).map(fileRe)]);

const layerRules = LAYERS.slice(1).map((l, k) => {
  const i = k + 1;
  return {
    name: `layer-${l.name}-imports-higher`,
    comment: `${l.name} (${[...l.dirs, ...(l.files ?? [])].join(', ')}) may import only itself and ${
      LAYERS.slice(i + 1)
        .map((x) => x.name)
        .join(', ') || 'nothing else'
    }, not ${LAYERS.slice(0, i)
      .map((x) => x.name)
      .join(', ')}.`,
    severity: 'error',
    from: inLayer(l),
    to: above(i),
  };
});

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'src-imports-world',
      comment:
        'Worlds (datasets/) register themselves: in src/ only the cli and the world registry (src/world/registry.ts) import them.',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/cli/', '^src/world/registry\\.ts$', ...TESTS] },
      to: { path: '^datasets/' },
    },
    {
      name: 'src-imports-baseline',
      comment: 'Baselines register through the method registry: in src/ only src/methods/index.ts imports baselines/.',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/methods/index\\.ts$', ...TESTS] },
      to: { path: '^baselines/' },
    },
    {
      name: 'backend-imports-world-or-train',
      comment:
        "src/backend runs higher layers' work only through registerWorkerTask (task_registry.ts): it imports neither datasets/ nor src/train/.",
      severity: 'error',
      from: { path: '^src/backend/', pathNot: TESTS },
      to: { path: ['^datasets/', '^src/train/'] },
    },
    {
      name: 'no-circular',
      comment:
        'No import cycles: split the shared part into a module that both sides import. Cycles closed only by type-only ' +
        'imports are allowed: types are erased, so they decide no load order (registries and their entries type each other).',
      severity: 'error',
      from: { pathNot: TESTS },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'layer-unmapped-module',
      comment: 'Every module under src/ belongs to a layer: add a new folder to LAYERS in .dependency-cruiser.cjs.',
      severity: 'error',
      from: { path: '^(src|baselines|datasets|bin)/', pathNot: [...ALL, ...TESTS] },
      to: {},
    },
    {
      name: 'layer-imports-unmapped',
      comment: 'Every module under src/ belongs to a layer: add a new folder to LAYERS in .dependency-cruiser.cjs.',
      severity: 'error',
      from: { pathNot: TESTS },
      to: { path: '^src/', pathNot: ALL },
    },
  ],
  options: {
    // Type-only imports and `import type` are part of the graph (see above).
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: ['node_modules', '^bench/'] },
    enhancedResolveOptions: {
      // package.json "exports" (tsx/esm/api, csv-stringify/sync, vega-lite) and the .js → .ts mapping.
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.mts', '.js', '.mjs', '.cjs', '.json', '.d.ts'],
    },
  },
};
