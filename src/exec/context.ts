/** The MethodContext a run sees, backed by the run directory. */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { appendLine, writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { asFloat32, f32, readSafetensors, writeSafetensors, type StTensor } from '../util/safetensors.js';
import { NonFiniteError, type Checkpointer, type MethodContext } from '../methods/types.js';
import { simulateDeviceLoss } from '../backend/index.js';

export interface ProgressSink {
  (done: number, total: number, label?: string): void;
}

function checkpointer(runDir: string): Checkpointer {
  const weights = join(runDir, 'checkpoint.safetensors');
  const meta = join(runDir, 'checkpoint.json');
  return {
    load() {
      // checkpoint.json is written after the weights: without it, the weights are not trusted.
      if (!existsSync(meta) || !existsSync(weights)) return null;
      const m = JSON.parse(readFileSync(meta, 'utf-8')) as { step: number; state: Record<string, unknown> };
      const st = readSafetensors(weights);
      const tensors = new Map<string, Float32Array>();
      const shapes = new Map<string, number[]>();
      for (const [name, t] of st.tensors) {
        tensors.set(name, asFloat32(t));
        shapes.set(name, t.shape);
      }
      return { step: m.step, tensors, shapes, state: m.state };
    },
    save(step, tensors, state = {}) {
      const st = new Map<string, StTensor>();
      for (const [name, t] of tensors) st.set(name, f32(t.shape, t.values));
      writeSafetensors(weights, st, { step: String(step) });
      writeJsonAtomic(meta, { step, state, saved_at: new Date().toISOString() });
      // Fault injection for the tests: the GPU is lost right after the run's first checkpoint.
      if (process.env.SDD_TEST_LOSE_DEVICE_AFTER_CHECKPOINT === '1') simulateDeviceLoss();
    },
  };
}

/** Keeps only metric lines of steps before `fromStep`: those after the checkpoint are redone. */
function trimMetrics(path: string, fromStep: number): void {
  if (!existsSync(path)) return;
  const kept = readFileSync(path, 'utf-8')
    .split('\n')
    .filter((line) => {
      if (!line.trim()) return false;
      try {
        return (JSON.parse(line) as { step: number }).step < fromStep;
      } catch {
        return false; // a torn last line from a killed writer
      }
    });
  writeFileAtomic(path, kept.length ? kept.join('\n') + '\n' : '');
}

export function makeContext<P>(opts: {
  runId: string;
  runDir: string;
  seed: number;
  world: string;
  params: P;
  signal: AbortSignal;
  progress: ProgressSink;
}): MethodContext<P> {
  const { runDir } = opts;
  const logPath = join(runDir, 'log.txt');
  const metricsPath = join(runDir, 'metrics.jsonl');
  const ckpt = checkpointer(runDir);
  const resumeStep = (() => {
    const m = join(runDir, 'checkpoint.json');
    return existsSync(m) ? (JSON.parse(readFileSync(m, 'utf-8')) as { step: number }).step : 0;
  })();
  trimMetrics(metricsPath, resumeStep);
  return {
    runId: opts.runId,
    runDir,
    seed: opts.seed,
    world: opts.world,
    params: opts.params,
    signal: opts.signal,
    checkpoint: ckpt,
    log(message) {
      appendLine(logPath, `${new Date().toISOString()} ${message}`);
    },
    metric(step, scalars) {
      for (const [k, v] of Object.entries(scalars)) {
        if (!Number.isFinite(v)) throw new NonFiniteError(`metric '${k}' is ${v} at step ${step}`);
      }
      appendLine(metricsPath, JSON.stringify({ step, time: Date.now() / 1000, ...scalars }));
    },
    progress: opts.progress,
    artifactPath(name) {
      if (name.includes('..') || name.startsWith('/')) throw new Error(`bad artifact name '${name}'`);
      return join(runDir, 'artifacts', name);
    },
  };
}

export function clearCheckpoint(runDir: string): void {
  rmSync(join(runDir, 'checkpoint.json'), { force: true });
  rmSync(join(runDir, 'checkpoint.safetensors'), { force: true });
}
