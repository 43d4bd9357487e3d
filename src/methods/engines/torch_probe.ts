/**
 * Which Python the torch engine runs, and what it sees (`python -m sdd_torch doctor`): for `auto`,
 * `sdd doctor` and the run's record. The interpreter is $SDD_PYTHON, else the first of python3 and
 * Debian's /usr/bin/python3 that imports torch and numpy, else python3 (the probe then says why).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../util/env.js';
import { pythonWith } from '../../util/python.js';
import type { EngineProbe } from '../engine.js';

/** The engine's package folder (python/sdd_torch), put on PYTHONPATH. */
const TORCH_PACKAGE_ROOT = join(PROJECT_ROOT, 'python');

export function torchPython(): string {
  return process.env.SDD_PYTHON || pythonWith(['torch', 'numpy']) || 'python3';
}

/** The environment a torch-engine process starts with: the package on PYTHONPATH, ahead of any other. */
export function torchEnv(): Record<string, string> {
  const rest = process.env.PYTHONPATH;
  return { PYTHONPATH: rest ? `${TORCH_PACKAGE_ROOT}:${rest}` : TORCH_PACKAGE_ROOT };
}

interface Doctor {
  python?: string;
  torch?: string | null;
  cuda?: boolean;
  devices?: Array<{ name: string; memory_bytes: number }>;
  why_not?: string | null;
}

let cached: EngineProbe | null = null;

/** Starts the engine once per process (importing torch takes a second or two) and remembers what it said. */
export function probeTorch(): EngineProbe {
  if (cached) return cached;
  const python = torchPython();
  const r = spawnSync(python, ['-m', 'sdd_torch', 'doctor'], {
    env: { ...process.env, ...torchEnv() },
    encoding: 'utf-8',
    timeout: 60_000,
  });
  let doc: Doctor | null = null;
  try {
    doc = r.status === 0 ? (JSON.parse(r.stdout) as Doctor) : null;
  } catch {
    doc = null;
  }
  if (!doc) {
    const why = r.error
      ? `${python}: ${r.error.message}`
      : `${python} -m sdd_torch doctor exited ${r.status}: ${(r.stderr || '').trim().split('\n').pop() ?? ''}`;
    cached = { usable: false, gpu: false, why, detail: { interpreter: python } };
    return cached;
  }
  const gpu = doc.cuda === true && (doc.devices?.length ?? 0) > 0;
  const why = doc.why_not ?? (gpu ? undefined : 'torch sees no CUDA device (it runs on the CPU)');
  cached = { usable: !doc.why_not, gpu, ...(why ? { why } : {}), detail: { interpreter: python, ...doc } };
  return cached;
}
