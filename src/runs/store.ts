/**
 * The run store: one directory per run under the store root.
 *   config.json    canonical run config (written when the run is planned)
 *   env.json       provenance: git, packages, backend, machine, seed, times
 *   metrics.jsonl  per-step scalars, one JSON object a line
 *   checkpoint.*   last checkpoint (safetensors + json), removed when the run finishes
 *   artifacts/     images, curves
 *   log.txt        human log; output.txt: the child process's stdout/stderr
 *   error.json     why the last attempt failed (absent after a success)
 *   origin.json    how the last `sdd run` of it was planned: file, profile, --set overrides
 *   result.json    final metrics, written last and atomically: its presence means "finished"
 *   lock/          held while a process executes the run
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { readJson, writeJsonAtomic } from '../util/atomic.js';
import { lockDir, readLock, tryLock, unlock } from './lock.js';
import type { RunConfig, RunOrigin } from '../experiments/expand.js';

export type RunStatus = 'finished' | 'failed' | 'running' | 'partial';

export interface RunSummary {
  id: string;
  dir: string;
  status: RunStatus;
  config: RunConfig | null;
  result: Record<string, unknown> | null;
  error: { message: string; kind?: string; bad_input?: boolean } | null;
  env: Record<string, unknown> | null;
  /** Null for runs made before it was recorded, or not through `sdd run`. */
  origin: RunOrigin | null;
  modified: Date;
}

function defaultStoreRoot(): string {
  return resolve(process.env.SDD_RUNS ?? 'runs');
}

export class RunStore {
  readonly root: string;

  constructor(root = defaultStoreRoot()) {
    this.root = resolve(root);
  }

  dir(id: string): string {
    return join(this.root, id);
  }

  /**
   * Creates the run directory with its config, or checks that an existing one agrees. The world's
   * outside files (world.json) are written each time: the same run may be resumed on a machine
   * where the checkpoints live elsewhere.
   */
  prepare(id: string, config: RunConfig, files: Record<string, string> = {}): string {
    const dir = this.dir(id);
    mkdirSync(join(dir, 'artifacts'), { recursive: true });
    const path = join(dir, 'config.json');
    if (!existsSync(path)) writeJsonAtomic(path, config);
    if (Object.keys(files).length) writeJsonAtomic(join(dir, 'world.json'), { files });
    return dir;
  }

  /** Records how the run was planned (a run of an existing folder only: nothing is created here). */
  recordOrigin(id: string, origin: RunOrigin): void {
    if (existsSync(this.dir(id))) writeJsonAtomic(join(this.dir(id), 'origin.json'), origin);
  }

  isFinished(id: string): boolean {
    return existsSync(join(this.dir(id), 'result.json'));
  }

  ids(): string[] {
    if (!existsSync(this.root)) return [];
    return readdirSync(this.root, { withFileTypes: true })
      .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
      .map((d) => d.name)
      .sort();
  }

  summary(id: string): RunSummary {
    const dir = this.dir(id);
    if (!existsSync(dir)) throw new UserError(`run '${id}' not found in ${this.root}`);
    const result = readJson<Record<string, unknown>>(join(dir, 'result.json'));
    const error = readJson<{ message: string; kind?: string; bad_input?: boolean }>(join(dir, 'error.json'));
    const lock = readLock(dir);
    const status: RunStatus = result ? 'finished' : lock.held && lock.alive ? 'running' : error ? 'failed' : 'partial';
    return {
      id,
      dir,
      status,
      config: readJson<RunConfig>(join(dir, 'config.json')),
      result,
      error: result ? null : error,
      env: readJson<Record<string, unknown>>(join(dir, 'env.json')),
      origin: readJson<RunOrigin>(join(dir, 'origin.json')),
      modified: statSync(dir).mtime,
    };
  }

  list(): RunSummary[] {
    return this.ids().map((id) => this.summary(id));
  }

  /** Accepts a full id or a unique prefix of one. */
  resolveId(prefix: string): string {
    const hits = this.ids().filter((id) => id.startsWith(prefix));
    if (hits.length === 1) return hits[0];
    if (hits.length === 0) throw new UserError(`run '${prefix}' not found in ${this.root}`);
    throw new UserError(`run '${prefix}' is ambiguous: ${hits.slice(0, 5).join(', ')}${hits.length > 5 ? ', …' : ''}`);
  }

  /**
   * Moves a finished run aside, whole, to <root>/.superseded/<id>-<time>/ (hidden from ls), so its
   * id can run again: a run made with other model weights is kept, not overwritten. Done under the
   * run's lock and only while `stillStale()` holds, so two `sdd run` racing on it move it once and
   * never move a run the other has just redone. Returns where it went, or null if it was not moved.
   */
  supersede(id: string, stillStale: () => boolean): string | null {
    const dir = this.dir(id);
    let locked = false;
    try {
      locked = tryLock(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null; // moved by another process
      throw e;
    }
    if (!locked) return null; // a live process is inside it
    let aside: string | null = null;
    try {
      if (!existsSync(join(dir, 'result.json')) || !stillStale()) return null;
      mkdirSync(join(this.root, '.superseded'), { recursive: true });
      aside = join(this.root, '.superseded', `${id}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
      renameSync(dir, aside);
      return aside;
    } finally {
      if (aside) rmSync(lockDir(aside), { recursive: true, force: true });
      else unlock(dir);
    }
  }

  remove(id: string, force = false): void {
    const s = this.summary(id);
    // A live lock means a process is inside the run, whatever its files say.
    const lock = readLock(s.dir);
    if (lock.held && lock.alive && !force)
      throw new UserError(`run '${id}' is running (pid ${readOwnerPid(s.dir)}); use --force`);
    rmSync(s.dir, { recursive: true, force: true });
  }
}

function readOwnerPid(dir: string): string {
  const l = readLock(dir);
  return l.held && l.owner ? String(l.owner.pid) : '?';
}
