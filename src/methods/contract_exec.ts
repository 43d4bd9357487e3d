/**
 * One run of a method process under the contract, as every caller does it (the external method,
 * the torch engine): inputs written, the process run and watched, the run folder kept clean,
 * the outputs checked, the edits evaluated by the one evaluator (editResult) and the arrays
 * pruned once the result is in. A torch twin's earlier phase (SDD's HQS scan) runs the same way
 * in a folder of its own and hands back its JSON output.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeJsonAtomic } from '../util/atomic.js';
import type { EditPromptSpec, World } from '../world/types.js';
import { editResult } from './editing.js';
import {
  ContractError,
  contractDirs,
  pruneFinished,
  prepareAttempt,
  readOutJson,
  type ContractDirs,
  type EngineBlock,
} from './contract.js';
import { writeInputs, type InputParams } from './contract_in.js';
import { runInWorker, runPlugin, type PluginExit } from './contract_run.js';
import { workersAvailable } from './engine_ipc.js';
import { snapshot, restore } from './contract_guard.js';
import { checkOutputs, type Outputs } from './contract_out.js';
import type { MethodContext, ResultValue } from './types.js';

export interface ContractRun {
  method: string;
  /** What the manifest records as params (every value, defaults filled). */
  params: object;
  inputs: InputParams;
  world: World;
  prompt: EditPromptSpec;
  command: string[];
  env?: Record<string, string>;
  hangTimeoutS: number;
  engine?: EngineBlock;
  /** An engine whose worker may run it, when `sdd run` offers one (engine_ipc.ts); else `command` is started. */
  worker?: string;
}

export interface ContractOutcome {
  /** The evaluation's values (editResult). */
  result: Record<string, ResultValue>;
  out: Outputs;
  wall_s: number;
}

/** Inputs written, the process run (a worker's or its own), and nothing left written outside its out/ folder. */
async function launch(
  ctx: MethodContext<unknown>,
  r: ContractRun,
  dirs: ContractDirs,
): Promise<{
  manifest: Awaited<ReturnType<typeof writeInputs>>['manifest'];
  sources: Float32Array | null;
  exit: PluginExit;
}> {
  const { manifest, sources } = await writeInputs(
    dirs,
    { id: ctx.runId, seed: ctx.seed, method: r.method, params: r.params },
    r.world,
    r.prompt,
    r.inputs,
    r.engine,
  );
  const before = snapshot(ctx.runDir);
  let wroteOutside: string[] = [];
  const viaWorker = r.worker !== undefined && workersAvailable();
  ctx.log(viaWorker ? `handed to a ${r.worker} worker of sdd run` : `started: ${r.command.join(' ')}`);
  const running =
    viaWorker && r.worker
      ? runInWorker(ctx, r.worker, dirs, r.hangTimeoutS)
      : runPlugin(ctx, r.command, dirs, r.hangTimeoutS, r.env);
  const exit = await running.finally(() => {
    // Undone whatever the outcome; a failure of the process's own is the reason given first.
    wroteOutside = restore(ctx.runDir, before);
    if (wroteOutside.length) ctx.log(`plugin wrote outside contract/out: ${wroteOutside.join(', ')}`);
  });
  if (wroteOutside.length) throw new ContractError(`plugin wrote outside contract/out: ${wroteOutside.join(', ')}`);
  return { manifest, sources, exit };
}

/**
 * The seconds earlier attempts of this run took (contract/attempts.json, kept by the harness): a
 * resumed method reports τ_train over every attempt, so the wall-time check counts them all. A
 * fresh start (no checkpoint) counts from zero.
 */
function earlierWall(dirs: ContractDirs): number {
  const path = join(dirs.root, 'attempts.json');
  if (!existsSync(join(dirs.out, 'checkpoint', 'state.json')) || !existsSync(path)) return 0;
  const v = (JSON.parse(readFileSync(path, 'utf-8')) as { wall_s?: unknown }).wall_s;
  return typeof v === 'number' && v >= 0 ? v : 0;
}

export async function executeContract(ctx: MethodContext<unknown>, r: ContractRun): Promise<ContractOutcome> {
  const dirs = contractDirs(ctx.runDir);
  const earlier = earlierWall(dirs);
  prepareAttempt(dirs);
  const t0 = Date.now();
  let ran;
  try {
    ran = await launch(ctx, r, dirs);
  } finally {
    writeJsonAtomic(join(dirs.root, 'attempts.json'), { wall_s: earlier + (Date.now() - t0) / 1000 });
  }
  const { manifest, sources, exit } = ran;
  const out = checkOutputs(dirs, manifest, earlier + exit.wall_s);
  const originals = out.originals ?? sources;
  if (!originals)
    throw new ContractError(
      'contract/out/originals.npy: missing (a world of codes: the plugin generates the originals)',
    );
  const result = await editResult(ctx, r.world, r.prompt, originals, out.edited, out.times);
  pruneFinished(dirs);
  return { result, out, wall_s: exit.wall_s };
}

/**
 * A twin's earlier phase (TorchTwin.prephase): run in contract/out/phase/ with its own inputs and
 * plan, its JSON output `output` returned and kept as contract/phase-<output> so that a resumed
 * run does not redo it.
 */
export async function executePhase(
  ctx: MethodContext<unknown>,
  r: ContractRun & { name: string; output: string },
): Promise<unknown> {
  const main = contractDirs(ctx.runDir);
  const kept = join(main.root, `phase-${r.output}`);
  if (existsSync(kept)) {
    ctx.log(`${r.name}: kept from an earlier attempt`);
    return JSON.parse(readFileSync(kept, 'utf-8')) as unknown;
  }
  const root = join(main.out, 'phase');
  const dirs: ContractDirs = { root, in: join(root, 'in'), out: join(root, 'out') };
  rmSync(root, { recursive: true, force: true });
  mkdirSync(dirs.in, { recursive: true });
  mkdirSync(dirs.out, { recursive: true });
  ctx.log(`${r.name}: the twin's first phase`);
  await launch(ctx, r, dirs);
  const value = readOutJson(dirs, r.output, z.unknown());
  writeJsonAtomic(kept, value);
  rmSync(root, { recursive: true, force: true });
  return value;
}
