/**
 * The experiment file schema. The method block is a union over registered methods, so each
 * method's own parameter schema validates `method.params` and appears in the exported JSON Schema
 * (editors complete parameter names per method).
 */
import { z } from 'zod';
import { BACKEND_CHOICES } from '../backend/choices.js';
import { allMethods } from '../methods/registry.js';
import { metricNames } from '../metrics/registry.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S. */
const SLURM_TIME = /^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2})$/;

export const EXECUTORS = ['local', 'slurm'] as const;
export type ExecutorName = (typeof EXECUTORS)[number];

/**
 * Cluster resources per run (one Slurm array task). Unset keys fall back to the method's defaults,
 * then to the cluster's own. Not part of run ids: where a run executes does not change it.
 */
export function slurmSchema() {
  return z.strictObject({
    partition: z.string().min(1).optional(),
    time: z.string().regex(SLURM_TIME, 'a Slurm time: minutes, M:S, H:M:S, D-H, D-H:M or D-H:M:S').optional().describe('time limit per run'),
    cpus: z.number().int().positive().optional().describe('--cpus-per-task'),
    mem: z.string().regex(/^\d+[KMGT]?$/, 'a Slurm memory size such as 8G or 16000M').optional().describe('--mem per run'),
    gpus: z.number().int().nonnegative().optional().describe('--gres=gpu:N per run'),
    account: z.string().min(1).optional(),
    qos: z.string().min(1).optional(),
    max_parallel: z.number().int().positive().optional().describe('array throttle (%K): tasks running at once'),
    requeue: z.boolean().optional().describe('let Slurm requeue a task after a node failure or preemption (it resumes from its checkpoint)'),
    extra: z.array(z.string().regex(/^--?[A-Za-z]/, 'an sbatch option such as --constraint=a100')).optional().describe('more #SBATCH lines, as sbatch options'),
  });
}
export type SlurmSettings = z.output<ReturnType<typeof slurmSchema>>;

function methodBlock(): z.ZodType {
  const options = allMethods().map((m) =>
    z.strictObject({
      name: z.literal(m.name).describe(m.description),
      params: (m.params as unknown as z.ZodType).default({}),
    }),
  );
  if (options.length === 0) throw new Error('no methods registered');
  return options.length === 1 ? options[0] : z.discriminatedUnion('name', options as never);
}

export function experimentSchema() {
  return z.strictObject({
    name: z.string().regex(NAME, 'letters, digits, _ . - only').describe('experiment name (report page, run listing)'),
    description: z.string().optional(),
    version: z.number().int().nonnegative().default(1).describe('bump when the experiment changes meaning; part of every run id'),
    world: z.string().default('toyfaces').describe('which world (datasets + models) the runs use'),
    checkpoints: z
      .record(z.string(), z.string().min(1))
      .default({})
      .describe("the world's outside files by role (`sdd checkpoints list`), e.g. {sd: DIR, clip: DIR, inception: FILE, images: DIR}; relative to this file; $SDD_CHECKPOINTS supplies the rest; not part of run ids (the weights' hashes are)"),
    backend: z.enum(BACKEND_CHOICES).default('auto'),
    executor: z.enum(EXECUTORS).optional().describe('where runs execute: local child processes (default) or Slurm array jobs; --executor overrides'),
    slurm: slurmSchema().default({}).describe('Slurm resources per run (executor: slurm)'),
    method: methodBlock(),
    seeds: z.array(z.number().int().nonnegative()).min(1).default([0]).describe('one run per seed'),
    sweep: z
      .record(z.string(), z.array(z.unknown()).min(1))
      .default({})
      .describe('dotted key → list of values; runs cover the cartesian grid'),
    where: z
      .array(
        z.strictObject({
          when: z.record(z.string(), z.unknown()).describe('dotted key → value; every one must equal the run\'s value'),
          set: z.record(z.string(), z.unknown()).describe('dotted key → value applied to the matching runs'),
        }),
      )
      .default([])
      .describe('settings for some sweep points only, e.g. when: {method.params.prompt: pose:frontal->side} set: {method.params.mapper.coarse: true}'),
    metrics: z.array(z.enum(metricNames() as [string, ...string[]])).default([]).describe('metric names (src/metrics/registry.ts)'),
    profiles: z
      .record(z.string(), z.record(z.string(), z.unknown()))
      .default({})
      .describe('named overrides (dotted key → value) picked with --profile'),
    regression: z
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
      .describe('sdd regress: per-metric thresholds (not part of run ids)'),
  });
}

export type Experiment = z.output<ReturnType<typeof experimentSchema>> & {
  method: { name: string; params: Record<string, unknown> };
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
