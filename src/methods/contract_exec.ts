/**
 * One run of a method process under the contract, as every caller does it (the external method,
 * the torch engine): inputs written, the process run and watched, the run folder kept clean,
 * the outputs checked, the edits evaluated by the one evaluator (editResult) and the arrays
 * pruned once the result is in.
 */
import type { EditPromptSpec, World } from '../world/types.js';
import { editResult, saveEditGrid } from './editing.js';
import { ContractError, contractDirs, pruneFinished, prepareAttempt, type EngineBlock } from './contract.js';
import { writeInputs, type InputParams } from './contract_in.js';
import { runInWorker, runPlugin } from './contract_run.js';
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

export async function executeContract(ctx: MethodContext<unknown>, r: ContractRun): Promise<ContractOutcome> {
  const dirs = contractDirs(ctx.runDir);
  prepareAttempt(dirs);
  const { manifest, sources } = await writeInputs(dirs, { id: ctx.runId, seed: ctx.seed, method: r.method, params: r.params }, r.world, r.prompt, r.inputs, r.engine);
  const before = snapshot(ctx.runDir);
  let wroteOutside: string[] = [];
  const viaWorker = r.worker !== undefined && workersAvailable();
  ctx.log(viaWorker ? `handed to a ${r.worker} worker of sdd run` : `started: ${r.command.join(' ')}`);
  const launch = viaWorker && r.worker ? runInWorker(ctx, r.worker, dirs, r.hangTimeoutS) : runPlugin(ctx, r.command, dirs, r.hangTimeoutS, r.env);
  const exit = await launch.finally(() => {
    // Undone whatever the outcome; a failure of the process's own is the reason given first.
    wroteOutside = restore(ctx.runDir, before);
    if (wroteOutside.length) ctx.log(`plugin wrote outside contract/out: ${wroteOutside.join(', ')}`);
  });
  if (wroteOutside.length) throw new ContractError(`plugin wrote outside contract/out: ${wroteOutside.join(', ')}`);
  const out = checkOutputs(dirs, manifest, exit.wall_s);
  const originals = out.originals ?? sources;
  if (!originals) throw new ContractError('contract/out/originals.npy: missing (a world of codes: the plugin generates the originals)');
  saveEditGrid(ctx, r.world, originals, out.edited);
  const result = await editResult(ctx, r.world, r.prompt, originals, out.edited, out.times);
  pruneFinished(dirs);
  return { result, out, wall_s: exit.wall_s };
}
