/**
 * A built-in method on the torch engine: its PyTorch twin (python/sdd_torch/methods/<name>.py)
 * in a Python process under the method contract. The TS twin resolves everything that is not
 * tensor work (Method.torch.plan); the world hands over its weights and our tokenizer's ids; the
 * edits come back as arrays and are evaluated here, by the same evaluator as a tfjs run.
 */
import { DeviceFaultError } from '../../backend/index.js';
import { UserError } from '../../errors.js';
import { loadWorld } from '../../world/registry.js';
import { promptOf } from '../editing.js';
import { executeContract, executePhase } from '../contract_exec.js';
import { PluginExitError } from '../contract_run.js';
import type { EngineBlock } from '../contract.js';
import type { RunEngine } from '../engine.js';
import type { Method, MethodContext, ResultValue } from '../types.js';
import { torchEnv, torchPython } from './torch_probe.js';

/**
 * `python -m sdd_torch run` exits with this on a CUDA out-of-memory error: the run fails as a
 * device fault and resumes.
 */
const DEVICE_EXIT = 3;

/** No progress for this long kills the process (start-up, importing torch and CUDA's first call count). */
function hangSeconds(): number {
  const v = Number(process.env.SDD_TORCH_HANG_S ?? 600);
  return Number.isFinite(v) && v > 0 ? v : 600;
}

/** SDD_TORCH_DEVICE=cpu|cuda pins the device; by default the process takes CUDA where it sees it. */
function deviceChoice(): EngineBlock['device'] {
  const v = process.env.SDD_TORCH_DEVICE;
  if (v === undefined || v === '' || v === 'auto') return 'auto';
  if (v === 'cpu' || v === 'cuda') return v;
  throw new UserError(`SDD_TORCH_DEVICE: '${v}' is not one of auto, cpu, cuda`);
}

/**
 * What every contract call of a run shares: the world (its contract prepared, the prompt's token
 * ids taken), the Python process, and the engine block around a plan.
 */
async function torchCalls(method: Method<unknown>, ctx: MethodContext<unknown>, engine: RunEngine) {
  const params = ctx.params as { prompt: string };
  const world = loadWorld(ctx.world);
  const contract = world.contract;
  if (!contract)
    throw new UserError(
      `engine: torch: world '${world.name}' does not hand its models to another engine (WorldContract)`,
    );
  await contract.prepare?.();
  const prompt = promptOf(world, params.prompt);
  const [text, sourceText, empty] = contract.tokenize([prompt.text, prompt.sourceText, '']);
  const block = (plan: Record<string, unknown>): EngineBlock => ({
    name: 'torch',
    precision: engine.precision,
    device: deviceChoice(),
    models: contract.models,
    tokens: { text, source_text: sourceText, empty },
    plan,
  });
  const common = {
    method: method.name,
    params: ctx.params as object,
    world,
    prompt,
    command: [torchPython(), '-m', 'sdd_torch', 'run'],
    env: torchEnv(),
    hangTimeoutS: hangSeconds(),
    worker: 'torch',
  };
  return { world, common, block };
}

export async function runTorch(
  method: Method<unknown>,
  ctx: MethodContext<unknown>,
  engine: RunEngine,
): Promise<Record<string, ResultValue>> {
  const twin = method.torch;
  if (!twin) throw new UserError(`engine: torch: method '${method.name}' has no PyTorch twin`);
  const { world, common, block } = await torchCalls(method, ctx, engine);
  const run = { seed: ctx.seed };
  ctx.log(`torch engine: precision ${engine.precision}, device ${deviceChoice()}`);
  try {
    const phase = twin.prephase?.(ctx.params, world, run) ?? null;
    const prior = phase
      ? await executePhase(ctx, {
          ...common,
          name: phase.name,
          output: phase.output,
          inputs: phase.inputs,
          engine: block(phase.plan),
        })
      : undefined;
    const plan = twin.plan(ctx.params, world, run, prior);
    const { result, out, wall_s } = await executeContract(ctx, {
      ...common,
      inputs: twin.inputs(ctx.params, world),
      engine: block(plan),
    });
    const own = twin.result?.(ctx.params, plan, out.times) ?? {};
    return {
      ...result,
      ...own,
      engine: { name: 'torch', precision: engine.precision },
      engine_env: out.env,
      engine_timing: out.timingExtra,
      engine_wall_s: wall_s,
      peak_memory_bytes: out.peakMemory,
    };
  } catch (e) {
    if (e instanceof PluginExitError && e.code === DEVICE_EXIT) throw new DeviceFaultError(e.message);
    throw e;
  }
}
