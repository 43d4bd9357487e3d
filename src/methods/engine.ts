/**
 * Engines: what computes a built-in method's tensors. `tfjs` runs the method in the run's own
 * process (the embedded default: nothing but npm); `torch` runs its PyTorch twin in a Python
 * process through the method contract (./engines/torch_run.ts). The engine is part of a run's
 * identity (another implementation is another result); the backend is not. An engine is one file
 * in ./engines/ plus one line in ./engines/index.ts; entries are light (the schema lists them),
 * their execution is loaded when a run starts.
 */
import { UserError } from '../errors.js';
import type { Method, MethodContext, ResultValue } from './types.js';
import * as entries from './engines/index.js';

/** What a run records of its engine (config.json `engine`; absent for tfjs, keeping its ids). */
export interface RunEngine {
  name: string;
  precision: Precision;
}

export const PRECISIONS = ['fp32', 'tf32', 'fp16'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** Whether the engine can run here, for `auto` and `sdd doctor`. */
export interface EngineProbe {
  usable: boolean;
  /** It sees a GPU it would compute on. */
  gpu: boolean;
  /** Why it is not usable (or not on a GPU): one line. */
  why?: string;
  /** What `sdd doctor` prints: interpreter, versions, devices. */
  detail: Record<string, unknown>;
}

export interface EngineDef {
  readonly name: string;
  /** One line for --help, the schema and `sdd doctor`. */
  readonly describe: string;
  /** Whether it computes `method` (tfjs: every method; torch: those with a PyTorch twin). */
  supports(method: Method<unknown>): boolean;
  /** On a cluster, a task of it asks for one GPU unless told otherwise (torch). */
  readonly wantsGpu?: boolean;
  /** Precisions it computes in (tfjs: fp32 only). */
  readonly precisions: readonly Precision[];
  /**
   * Whether `auto` picks it: asked for GPUs (a cluster executor's block), or it sees one here.
   * Engines without it are the fallback.
   */
  prefer?(at: { gpusAsked: boolean }): boolean;
  probe?(): EngineProbe;
  /**
   * A long-lived worker process taking contract folders in turn (src/exec/engine_workers.ts);
   * without it, a process per run.
   */
  worker?(): { command: string[]; env: Record<string, string> };
  run(method: Method<unknown>, ctx: MethodContext<unknown>, engine: RunEngine): Promise<Record<string, ResultValue>>;
}

const ENGINES: readonly EngineDef[] = Object.values(entries);

/** The fallback engine, which every method supports. */
export const DEFAULT_ENGINE = 'tfjs';

export function engineNames(): string[] {
  return ENGINES.map((e) => e.name);
}

export function allEngines(): readonly EngineDef[] {
  return ENGINES;
}

export function getEngine(name: string): EngineDef {
  const e = ENGINES.find((x) => x.name === name);
  if (!e) throw new UserError(`engine: unknown engine '${name}' (have: ${engineNames().join(', ')}, auto)`);
  return e;
}

/**
 * The engine a run is planned on. `auto` is resolved here, where runs are planned, never per host:
 * the first engine that prefers itself (torch: a CUDA device seen, or GPUs asked of the cluster)
 * and supports the method, else tfjs. A named engine that cannot compute the method is one line.
 */
export function resolveEngine(
  choice: string,
  method: Method<unknown>,
  precision: Precision,
  at: { gpusAsked: boolean; file: string },
): RunEngine | null {
  const engine =
    choice === 'auto'
      ? (ENGINES.find((e) => e.prefer?.(at) && e.supports(method)) ?? getEngine(DEFAULT_ENGINE))
      : getEngine(choice);
  if (!engine.supports(method))
    throw new UserError(
      `${at.file}: engine: ${engine.name}: method '${method.name}' has no ${engine.name} implementation (engines: ${ENGINES.filter(
        (e) => e.supports(method),
      )
        .map((e) => e.name)
        .join(', ')})`,
    );
  if (!engine.precisions.includes(precision))
    throw new UserError(
      `${at.file}: precision: ${precision}: engine ${engine.name} computes in ${engine.precisions.join(', ')} only`,
    );
  return engine.name === DEFAULT_ENGINE ? null : { name: engine.name, precision };
}
