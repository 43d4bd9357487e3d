/** Where this checkout is and what machine runs it: the project root, git, package versions, GPUs, the cluster. */
import { execFileSync } from 'node:child_process';
import { cpus, hostname, platform, release, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, isAbsolute, join, relative } from 'node:path';

export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface GitInfo {
  sha: string | null;
  dirty: boolean | null;
}

/**
 * HEAD and whether tracked files differ from it. `ignore` leaves paths out of `dirty`: a zoo
 * retrain rewrites the zoo's own files model by model, and a card should say whether the code
 * differed, not that an earlier model of the same retrain was already written. Paths outside the
 * repository (a temp zoo) are skipped.
 */
export function gitInfo(cwd = PROJECT_ROOT, ignore: string[] = []): GitInfo {
  try {
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
    const excludes = ignore
      .map((p) => relative(cwd, p))
      .filter((r) => r !== '' && !r.startsWith('..') && !isAbsolute(r));
    const args = [
      'status',
      '--porcelain',
      '--untracked-files=no',
      ...(excludes.length > 0 ? ['--', '.', ...excludes.map((r) => `:(exclude)${r}`)] : []),
    ];
    const status = execFileSync('git', args, { cwd, stdio: ['ignore', 'pipe', 'ignore'] });
    return { sha, dirty: status.toString().trim().length > 0 };
  } catch {
    return { sha: null, dirty: null };
  }
}

const KEY_PACKAGES = [
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-node',
  '@tensorflow/tfjs-node-gpu',
  'zod',
  'yaml',
];

export function packageVersions(): Record<string, string | null> {
  const req = createRequire(join(PROJECT_ROOT, 'package.json'));
  const out: Record<string, string | null> = {};
  const own = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf-8')) as { version: string };
  out['sdd-bench'] = own.version;
  for (const name of KEY_PACKAGES) {
    try {
      const pj = req.resolve(`${name}/package.json`);
      out[name] = (JSON.parse(readFileSync(pj, 'utf-8')) as { version: string }).version;
    } catch {
      out[name] = null;
    }
  }
  return out;
}

export function gpuInfo(): string[] {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=name,memory.total', '--format=csv,noheader'], {
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    });
    return out.toString().trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

export function machineInfo() {
  const c = cpus();
  return {
    host: hostname(),
    platform: `${platform()} ${release()}`,
    cpu: c[0]?.model ?? 'unknown',
    cores: c.length,
    memory_gb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    gpus: gpuInfo(),
    node: process.version,
  };
}

/**
 * Where a cluster put the run: the Slurm job, array task, node and partition, and the GPUs it was
 * given. Null outside Slurm (CUDA_VISIBLE_DEVICES is kept on its own: local runs may set it too).
 */
export function clusterInfo(env: NodeJS.ProcessEnv = process.env) {
  const slurm = env.SLURM_JOB_ID
    ? {
        job_id: env.SLURM_JOB_ID,
        array_job_id: env.SLURM_ARRAY_JOB_ID ?? null,
        array_task_id: env.SLURM_ARRAY_TASK_ID ?? null,
        node: env.SLURMD_NODENAME ?? null,
        partition: env.SLURM_JOB_PARTITION ?? null,
        gpus: env.SLURM_JOB_GPUS ?? env.SLURM_STEP_GPUS ?? null,
        restart_count: env.SLURM_RESTART_COUNT ? Number(env.SLURM_RESTART_COUNT) : 0,
      }
    : null;
  return { slurm, cuda_visible_devices: env.CUDA_VISIBLE_DEVICES ?? null };
}

/** The Slurm array task this process is ("123_4"), or the plain job id, or null outside Slurm. */
export function slurmTaskId(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.SLURM_ARRAY_JOB_ID && env.SLURM_ARRAY_TASK_ID) return `${env.SLURM_ARRAY_JOB_ID}_${env.SLURM_ARRAY_TASK_ID}`;
  return env.SLURM_JOB_ID ?? null;
}
