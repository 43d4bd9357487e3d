/**
 * The experiment file schema. The method block is a union over registered methods, so each
 * method's own parameter schema validates `method.params` and appears in the exported JSON Schema
 * (editors complete parameter names per method).
 */
import { z } from 'zod';
import { BACKEND_CHOICES } from '../backend/choices.js';
import { allMethods } from '../methods/registry.js';
import { allExecutors } from '../exec/index.js';
import { allEngines, DEFAULT_ENGINE, engineNames, PRECISIONS } from '../methods/engine.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * `executor:` and each executor's own settings block (e.g. `slurm:`), from the executor registry
 * (src/exec/index.ts registers them; their entries load nothing heavy). Typed as no keys: the
 * blocks are the executors' business, read back by key (expand.ts).
 */
function executorShape(): Record<never, never> {
  const all = allExecutors();
  const names = all.map((e) => e.name) as [string, ...string[]];
  const what = all.map((e) => `${e.name} (${e.describe})`).join('; ');
  const shape: Record<string, z.ZodType> = {
    executor: z.enum(names).optional().describe(`where runs execute: ${what}; --executor overrides`),
  };
  for (const e of all)
    if (e.settings) shape[e.settings.key] = e.settings.schema().default({}).describe(e.settings.describe);
  return shape as Record<never, never>;
}

function methodBlock(): z.ZodType {
  const options = allMethods().map((m) =>
    z.strictObject({
      name: z.literal(m.name).describe(m.description),
      // Each method's params schema has its own output type; the union only needs it as a ZodType.
      params: (m.params as unknown as z.ZodType).default({}),
    }),
  );
  if (options.length === 0) throw new Error('no methods registered');
  return options.length === 1 ? options[0] : z.discriminatedUnion('name', options as never);
}

export function experimentSchema() {
  return experimentBase().extend(executorShape());
}

/** `engine:` over the registered engines (read when the schema is built, after they register). */
function engineField() {
  const names = allEngines()
    .map((e) => `${e.name} (${e.describe})`)
    .join('; ');
  return z
    .enum([DEFAULT_ENGINE, ...engineNames().filter((n) => n !== DEFAULT_ENGINE), 'auto'])
    .default(DEFAULT_ENGINE)
    .describe(
      `what computes the method: ${names}; auto: torch where a CUDA device or cluster GPUs are there, else tfjs (resolved when runs are planned); part of run ids except tfjs; --engine overrides`,
    );
}

/** `where:` rules: settings for some sweep points only. */
const whereRules = z
  .array(
    z.strictObject({
      when: z.record(z.string(), z.unknown()).describe("dotted key → value; every one must equal the run's value"),
      set: z.record(z.string(), z.unknown()).describe('dotted key → value applied to the matching runs'),
    }),
  )
  .default([])
  .describe(
    'settings for some sweep points only, e.g. when: {method.params.prompt: pose:frontal->side} set: {method.params.mapper.coarse: true}',
  );

/** `regression:` settings of `sdd regress`. */
const regressionBlock = z
  .strictObject({
    thresholds: z
      .record(
        z.string(),
        z.strictObject({
          min_effect: z.number().nonnegative().describe('smallest |Δ| that matters (practical significance)'),
          worse: z.enum(['lower', 'higher']).describe('which direction is a regression'),
        }),
      )
      .default({}),
    resamples: z.number().int().min(200).default(2000),
    alpha: z.number().gt(0).lt(1).default(0.05).describe('level of the CIs and of the Benjamini–Hochberg control'),
  })
  .optional()
  .describe('sdd regress: per-metric thresholds (not part of run ids)');

function experimentBase() {
  return z.strictObject({
    name: z.string().regex(NAME, 'letters, digits, _ . - only').describe('experiment name (report page, run listing)'),
    description: z.string().optional(),
    title: z.string().min(1).optional().describe('human title of its report page (not part of run ids)'),
    version: z
      .number()
      .int()
      .nonnegative()
      .default(1)
      .describe('bump when the experiment changes meaning; part of every run id'),
    world: z.string().default('toyfaces').describe('which world (datasets + models) the runs use'),
    checkpoints: z
      .record(z.string(), z.string().min(1))
      .default({})
      .describe(
        "the world's outside files by role (`sdd checkpoints list`), e.g. {sd: DIR, clip: DIR, inception: FILE, images: DIR}; relative to this file; $SDD_CHECKPOINTS supplies the rest; not part of run ids (the weights' hashes are)",
      ),
    backend: z.enum(BACKEND_CHOICES).default('auto'),
    engine: engineField(),
    precision: z
      .enum(PRECISIONS)
      .default('fp32')
      .describe('the torch engine: fp32 (TF32 off), tf32 or fp16; part of run ids on torch (tfjs computes in fp32)'),
    method: methodBlock(),
    seeds: z.array(z.number().int().nonnegative()).min(1).default([0]).describe('one run per seed'),
    sweep: z
      .record(z.string(), z.array(z.unknown()).min(1))
      .default({})
      .describe('dotted key → list of values; runs cover the cartesian grid'),
    where: whereRules,
    profiles: z
      .record(z.string(), z.record(z.string(), z.unknown()))
      .default({})
      .describe('named overrides (dotted key → value) picked with --profile'),
    regression: regressionBlock,
  });
}

export type Experiment = z.output<ReturnType<typeof experimentSchema>> & {
  method: { name: string; params: Record<string, unknown> };
  /** The executor named by the file, if any (checked against the registry). */
  executor?: string;
};

export function experimentJsonSchema(): unknown {
  const schema = z.toJSONSchema(experimentSchema(), { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  // `include:` is resolved before validation, so the validator never sees it; editors should.
  const props = (schema.properties ?? {}) as Record<string, unknown>;
  props.include = {
    description: 'file(s) this one extends, relative to it; deep-merged, this file wins',
    anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
  };
  schema.properties = props;
  schema.title = 'sdd-bench experiment';
  return schema;
}
