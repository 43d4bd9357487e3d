/** env.json: everything needed to tell later where and with what a run's numbers were made. */
import type { BackendInfo } from '../backend/index.js';
import { clusterInfo, gitInfo, machineInfo, packageVersions } from '../util/env.js';

export function runEnv(backend: BackendInfo, seed: number, started: Date) {
  return {
    git: gitInfo(),
    packages: packageVersions(),
    backend,
    machine: machineInfo(),
    cluster: clusterInfo(),
    seed,
    pid: process.pid,
    started_at: started.toISOString(),
    finished_at: null as string | null,
  };
}
