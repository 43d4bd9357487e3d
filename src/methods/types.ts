/**
 * The contract between the executor and a method (SDD, a baseline, or a built-in test method).
 * A method sees only this context: it never knows which world, backend or store it runs on.
 */
import type { z } from 'zod';
import type { ResultValue } from '../util/result.js';
import type { ReportSection } from './report.js';
import type { World } from '../world/types.js';

/**
 * The TypeScript half of a method's PyTorch twin. The TS code is the spec: everything that is not
 * tensor work (timesteps, ᾱ per step, seeds, batch layout, selected timesteps) is resolved here
 * into the manifest's `engine.plan`; the Python side keeps no defaults of its own.
 */
export interface TorchTwin<P> {
  /** What the harness writes into contract/in/: m, which sources, n training images or codes, noise streams. */
  inputs(p: P, world: World): TwinInputs;
  /**
   * A phase the engine runs first, whose JSON output `plan` then takes as `prior` (SDD: the HQS
   * scan, before the selection in TS); null when this run needs none.
   */
  prephase?(p: P, world: World, run: { seed: number }): TwinPhase | null;
  /** manifest.engine.plan (plain JSON); `prior`: the prephase's output, when one ran. */
  plan(p: P, world: World, run: { seed: number }, prior?: unknown): Record<string, unknown>;
  /**
   * Result values of its own beside the evaluation's (SDEdit: strength, steps_run); they may
   * replace an evaluation's value (SDD: τ_train with the prephase's scan seconds). `times`: what
   * the twin's process measured.
   */
  result?(
    p: P,
    plan: Record<string, unknown>,
    times: { tau_train_s: number; tau_infer_s: number },
  ): Record<string, ResultValue>;
}

/** A twin's earlier phase: its own inputs and plan, and the JSON file it leaves in its contract/out/. */
export interface TwinPhase {
  /** For logs and progress ("hqs scan"). */
  name: string;
  inputs: TwinInputs;
  plan: Record<string, unknown>;
  output: string;
}

/**
 * The contract's inputs of a run (src/methods/contract_in.ts): dimensions 'm' / 'n' stand for
 * eval_images / train_images.
 */
export interface TwinInputs {
  eval_images: number;
  sources: 'reconstructed' | 'real';
  train_images: number;
  noise: Record<string, Array<number | 'm' | 'n'>>;
}

// Defined below the methods (eval builds result values too); re-exported for the methods.
export type { ResultValue, Scalar } from '../util/result.js';

export interface Checkpointer {
  /** The last saved state, or null on a fresh start. */
  load(): {
    step: number;
    tensors: Map<string, Float32Array>;
    shapes: Map<string, number[]>;
    state: Record<string, unknown>;
  } | null;
  save(
    step: number,
    tensors: Map<string, { values: Float32Array; shape: number[] }>,
    state?: Record<string, unknown>,
  ): void;
}

export interface MethodContext<P> {
  readonly runId: string;
  readonly runDir: string;
  readonly seed: number;
  /** The experiment's world (`world:`), for methods that load models through the world registry. */
  readonly world: string;
  readonly params: P;
  readonly signal: AbortSignal;
  log(message: string): void;
  /** One line of per-step scalars in metrics.jsonl; non-finite values stop the run. */
  metric(step: number, scalars: Record<string, number>): void;
  progress(done: number, total: number, label?: string): void;
  artifactPath(name: string): string;
  readonly checkpoint: Checkpointer;
}

export interface RunResources {
  cpus?: number;
  /** Slurm size, e.g. 8G. */
  mem?: string;
  /** Slurm time limit, e.g. 2:00:00. */
  time?: string;
  gpus?: number;
}

export interface Method<P = unknown> {
  readonly name: string;
  /** Bumped whenever a change alters results: part of every run id. */
  readonly version: number;
  readonly description: string;
  readonly params: z.ZodType<P>;
  /**
   * Settings added after runs existed, with the value that reproduces the old behaviour (dotted
   * param paths): left at that value they stay out of the run id, so finished runs keep their id
   * and are not redone. config.json still records them.
   */
  readonly idNeutral?: Record<string, unknown>;
  /**
   * Plan time, where the experiment file is read (`dir`: its folder): for a method whose params
   * point at files (the external method's plugin). `params` is what config.json records and the
   * run receives (the files' paths made absolute, their hashes to check before running);
   * `identity` stands for the params in the run id (the files' contents, not where they lie), so
   * a changed plugin is a new run and a moved one is not. Methods without it: ids over params.
   */
  plan?(params: P, at: { dir: string }): { params: P; identity: Record<string, unknown> };
  /**
   * What one run needs on a cluster node, for executors that ask for resources (Slurm): the
   * defaults under an experiment file's `slurm:` block and the CLI's flags.
   */
  readonly resources?: RunResources;
  /**
   * Charts of its own on report pages (SDD's HQS curves, SDEdit's strength line): each section is
   * one file, listed here; the contract is in ./report.ts.
   */
  readonly reportSections?: readonly ReportSection[];
  /**
   * Table values derived from a run's result metrics, added to them on report pages (SDD's
   * selected set S as |S| and its mean HQS). A key becomes a column if src/metrics/registry.ts
   * has an entry for it.
   */
  reportValues?(metrics: Readonly<Record<string, unknown>>): Record<string, unknown>;
  /**
   * Its PyTorch twin (python/sdd_torch/methods/<name>.py), run by the torch engine through the
   * method contract: absent, the method runs on tfjs only (`engine: torch` refuses it).
   */
  readonly torch?: TorchTwin<P>;
  run(ctx: MethodContext<P>): Promise<Record<string, ResultValue>>;
}

// Defined below the methods (sdd's distillation throws it too); re-exported for the methods.
export { NonFiniteError } from '../errors.js';
