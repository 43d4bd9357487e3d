/**
 * A real single-node Slurm cluster for the tests: munged, slurmctld and slurmd from Debian's
 * slurm-wlm and munge packages, all inside one temporary folder, on random ports. Needs root (slurmd
 * starts jobs as their user). Starts in about a second.
 *
 * Teardown cancels every job and waits for an empty queue before shutting the daemons down;
 * otherwise job processes outlive them.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, totalmem } from 'node:os';
import { join } from 'node:path';
import { execa, execaSync, type ResultPromise } from 'execa';
import { sleep, tmp } from './helpers.js';

export interface SlurmCluster {
  dir: string;
  /** Environment for every Slurm client and for sdd: SLURM_CONF points at this cluster. */
  env: Record<string, string>;
  /** Runs a Slurm client command against this cluster. */
  cmd(name: string, args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/** Why no cluster can start here, or null when one can. */
export function slurmMissing(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (slurmd runs the jobs)';
  for (const bin of ['munged', 'mungekey', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'scontrol', 'scancel']) {
    try {
      execaSync('sh', ['-c', `command -v ${bin}`]);
    } catch {
      return `${bin} not found (apt-get install slurm-wlm munge)`;
    }
  }
  return null;
}

function freePortPair(): number {
  // Random ports in a range nothing else here uses; a clash shows as a start timeout.
  return 20000 + 2 * Math.floor(Math.random() * 10000);
}

/**
 * `cpus` is what the node advertises: more than the machine has is fine for the tests' short
 * runs (config_overrides keeps slurmd from draining the node for it).
 */
export async function startSlurm(opts: { cpus?: number } = {}): Promise<SlurmCluster> {
  const dir = tmp('sdd-slurm-');
  chmodSync(dir, 0o755);
  for (const d of ['munge', 'state', 'spool', 'log']) mkdirSync(join(dir, d));
  chmodSync(join(dir, 'munge'), 0o755); // munged refuses a socket folder others can write to
  const key = join(dir, 'munge.key');
  await execa('mungekey', ['-c', '-k', key]);
  chmodSync(key, 0o600);
  const socket = join(dir, 'munge', 'munge.socket.2');
  const procs: ResultPromise[] = [];
  // The daemons run until stop(), which awaits (or kills) every one of them: tracked in procs.
  const spawn = (bin: string, args: string[], env: Record<string, string> = {}): void => {
    const p = execa(bin, args, {
      reject: false,
      env,
      stdout: { file: join(dir, 'log', `${bin}.out`) },
      stderr: { file: join(dir, 'log', `${bin}.err`) },
    });
    procs.push(p);
  };
  spawn('munged', [
    '-F',
    '--force',
    `--key-file=${key}`,
    `--socket=${socket}`,
    `--pid-file=${join(dir, 'munged.pid')}`,
    `--log-file=${join(dir, 'log', 'munged.log')}`,
    `--seed-file=${join(dir, 'munged.seed')}`,
  ]);
  const port = freePortPair();
  const memMb = Math.floor((totalmem() / 2 ** 20) * 0.8);
  const conf = join(dir, 'slurm.conf');
  writeFileSync(
    conf,
    [
      'ClusterName=sddtest',
      `SlurmctldHost=${hostname()}(127.0.0.1)`,
      'SlurmUser=root',
      'SlurmdUser=root',
      `SlurmctldPort=${port}`,
      `SlurmdPort=${port + 1}`,
      'AuthType=auth/munge',
      `AuthInfo=socket=${socket}`,
      'CredType=cred/munge',
      `StateSaveLocation=${join(dir, 'state')}`,
      `SlurmdSpoolDir=${join(dir, 'spool')}`,
      `SlurmctldPidFile=${join(dir, 'slurmctld.pid')}`,
      `SlurmdPidFile=${join(dir, 'slurmd.pid')}`,
      `SlurmctldLogFile=${join(dir, 'log', 'slurmctld.log')}`,
      `SlurmdLogFile=${join(dir, 'log', 'slurmd.log')}`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core',
      'SchedulerParameters=batch_sched_delay=0',
      'SlurmdParameters=config_overrides',
      'AccountingStorageType=accounting_storage/none',
      'JobCompType=jobcomp/filetxt',
      `JobCompLoc=${join(dir, 'jobcomp.txt')}`,
      'JobAcctGatherType=jobacct_gather/none',
      'MpiDefault=none',
      'ReturnToService=2',
      // A cancelled or timed-out task gets SIGTERM, then SIGKILL this many seconds later.
      'KillWait=5',
      `NodeName=localhost NodeAddr=127.0.0.1 CPUs=${opts.cpus ?? 8} RealMemory=${memMb} State=UNKNOWN`,
      'PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP',
      '',
    ].join('\n'),
  );
  const env = { SLURM_CONF: conf };
  const cmd = async (name: string, args: string[]) => String((await execa(name, args, { env })).stdout);
  const cluster: SlurmCluster = {
    dir,
    env,
    cmd,
    async stop() {
      try {
        await execa('scancel', ['--user=root'], { env, reject: false });
        for (let i = 0; i < 100; i++) {
          const q = await execa('squeue', ['-h', '-o', '%i'], { env, reject: false });
          if (q.exitCode !== 0 || String(q.stdout).trim() === '') break;
          await sleep(200);
        }
        await execa('scontrol', ['shutdown'], { env, reject: false });
        await Promise.race([Promise.all(procs.slice(1)), sleep(10_000)]);
      } finally {
        for (const p of procs) p.kill('SIGKILL');
        await Promise.race([Promise.all(procs), sleep(5_000)]);
      }
    },
  };
  // Wait for munged's socket, then start the daemons and wait for the node to be idle.
  for (let i = 0; i < 50; i++) {
    try {
      readFileSync(join(dir, 'munged.pid'));
      break;
    } catch {
      await sleep(100);
    }
  }
  spawn('slurmctld', ['-D', '-i'], env);
  spawn('slurmd', ['-D', '-N', 'localhost'], env);
  for (let i = 0; i < 100; i++) {
    const r = await execa('sinfo', ['-h', '-o', '%T'], { env, reject: false });
    if (r.exitCode === 0 && /idle/.test(String(r.stdout))) return cluster;
    await sleep(200);
  }
  await cluster.stop();
  throw new Error(`the test Slurm cluster did not come up in 20 s; logs in ${join(dir, 'log')}`);
}
