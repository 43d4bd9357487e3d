/**
 * Resumable training state outside git (.cache/zoo-train/<model>/): parameters, optimizer moments
 * and the step, written atomically (weights first, then the json that vouches for them).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../nn/params.js';
import type { AdamOptimizer } from '../nn/adam.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { asFloat32, f32, readSafetensors, writeSafetensors, type StTensor } from '../util/safetensors.js';

export async function saveTrainState(
  dir: string,
  step: number,
  params: Params,
  opt: AdamOptimizer,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const t = new Map<string, StTensor>();
  for (const [name, v] of params.vars) t.set(`p/${name}`, f32(v.shape, ((await v.data()) as Float32Array).slice()));
  const st = await opt.getState();
  for (const [name, v] of params.vars) {
    const m = st.m.get(v.name);
    const s = st.v.get(v.name);
    if (m && s) {
      t.set(`m/${name}`, f32([m.length], m.slice()));
      t.set(`v/${name}`, f32([s.length], s.slice()));
    }
  }
  writeSafetensors(join(dir, 'state.safetensors'), t);
  writeJsonAtomic(join(dir, 'state.json'), { step, adam_step: st.step, saved_at: new Date().toISOString(), ...extra });
}

/** The json beside a checkpoint (step, saved_at and the caller's extra fields), or null when none. */
export function trainStateInfo(dir: string): Record<string, unknown> | null {
  const meta = join(dir, 'state.json');
  return existsSync(meta) ? (JSON.parse(readFileSync(meta, 'utf-8')) as Record<string, unknown>) : null;
}

/** Restores into existing params/optimizer; returns the step to continue from (0 when none). */
export function loadTrainState(dir: string, params: Params, opt: AdamOptimizer): number {
  const meta = join(dir, 'state.json');
  if (!existsSync(meta) || !existsSync(join(dir, 'state.safetensors'))) return 0;
  const info = JSON.parse(readFileSync(meta, 'utf-8')) as { step: number; adam_step: number };
  const st = readSafetensors(join(dir, 'state.safetensors'));
  const m = new Map<string, Float32Array>();
  const v = new Map<string, Float32Array>();
  for (const [name, variable] of params.vars) {
    const p = st.tensors.get(`p/${name}`);
    if (!p) throw new Error(`${dir}: checkpoint lacks parameter ${name} (architecture changed? delete the folder)`);
    const t = tf.tensor(asFloat32(p), variable.shape);
    variable.assign(t);
    t.dispose();
    const mm = st.tensors.get(`m/${name}`);
    const vv = st.tensors.get(`v/${name}`);
    if (mm && vv) {
      m.set(variable.name, asFloat32(mm));
      v.set(variable.name, asFloat32(vv));
    }
  }
  opt.setState({ step: info.adam_step, m, v });
  return info.step;
}
