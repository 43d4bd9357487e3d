/**
 * `sdd zoo train --jobs N`: trains several zoo models at once, each in its own
 * `sdd zoo train NAME` child (own worker pool, own resumable state), starting a model as soon as
 * the models it loads frozen are trained. On 2 vCPUs this is not faster than one after another
 * (two trainings ran at 39% + 54% of their solo speeds: each pool already fills the cores), so
 * `make zoo` does not use it; it is for machines where one training does not keep every core busy.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { PROJECT_ROOT } from '../../../src/util/env.js';
import { formatDuration, type ProgressReporter } from '../../../src/util/progress.js';
import type { TrainOverrides } from './index.js';

const BIN = join(PROJECT_ROOT, 'bin', 'sdd.mjs');

/**
 * The pending models that may start now: every model they need that is also being trained has
 * finished (a needed model not in this batch is the shipped one). Zoo order is kept.
 */
export function readyToStart(
  pending: readonly string[],
  needsOf: (name: string) => readonly string[],
  requested: ReadonlySet<string>,
  finished: ReadonlySet<string>,
): string[] {
  return pending.filter((n) => needsOf(n).every((m) => !requested.has(m) || finished.has(m)));
}

/** Models that can never start because something they need failed (directly or through another). */
export function blockedBy(
  pending: readonly string[],
  needsOf: (name: string) => readonly string[],
  failed: ReadonlySet<string>,
): Map<string, string> {
  const out = new Map<string, string>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const n of pending) {
      if (out.has(n)) continue;
      const bad = needsOf(n).find((m) => failed.has(m) || out.has(m));
      if (bad) {
        out.set(n, bad);
        grew = true;
      }
    }
  }
  return out;
}

export interface ConcurrentTrainOptions {
  jobs: number;
  needsOf(name: string): readonly string[];
  overrides: TrainOverrides;
  backend?: string;
  /** One log per model (the child's whole output). */
  logDir: string;
  progress: ProgressReporter;
  env?: Record<string, string>;
}

/** Trains `names` (in zoo order) with at most `jobs` at a time; resolves to the models that failed. */
export async function trainConcurrently(names: string[], o: ConcurrentTrainOptions): Promise<string[]> {
  mkdirSync(o.logDir, { recursive: true });
  const requested = new Set(names);
  const finished = new Set<string>();
  const failed = new Set<string>();
  let pending = [...names];
  const running = new Map<string, Promise<void>>();
  for (;;) {
    for (const [n, why] of blockedBy(pending, o.needsOf, failed)) {
      o.progress.log(`skip ${n}: needs ${why}, which did not train`);
      failed.add(n);
    }
    pending = pending.filter((n) => !failed.has(n));
    for (const n of readyToStart(pending, o.needsOf, requested, finished).slice(
      0,
      Math.max(0, o.jobs - running.size),
    )) {
      pending = pending.filter((m) => m !== n);
      running.set(
        n,
        trainChild(n, o).then((ok) => {
          (ok ? finished : failed).add(n);
          running.delete(n);
        }),
      );
    }
    if (running.size === 0) break;
    await Promise.race(running.values());
  }
  // Only a cycle in `needs` leaves models pending with nothing running: say so rather than skip them.
  for (const n of pending) {
    o.progress.log(`skip ${n}: its needs (${o.needsOf(n).join(', ')}) never became ready`);
    failed.add(n);
  }
  return [...failed];
}

/** One child `sdd zoo train NAME`; its progress lines drive this process's bar for it. */
async function trainChild(name: string, o: ConcurrentTrainOptions): Promise<boolean> {
  const log = join(o.logDir, `${name}.log`);
  writeFileSync(log, '');
  const args = [BIN, 'zoo', 'train', name];
  if (o.overrides.steps !== undefined) args.push('--steps', String(o.overrides.steps));
  if (o.overrides.trainN !== undefined) args.push('--train-n', String(o.overrides.trainN));
  if (o.overrides.evalN !== undefined) args.push('--eval-n', String(o.overrides.evalN));
  if (o.backend) args.push('--backend', o.backend);
  const t0 = Date.now();
  o.progress.start(name, name);
  const child = execa(process.execPath, args, { all: true, reject: false, stdin: 'ignore', buffer: false, env: o.env });
  for await (const line of child.iterable({ from: 'all' })) {
    appendFileSync(log, `${line}\n`);
    // The child's plain progress lines: "[hh:mm:ss] NAME: done/total (p%) …".
    const m = /\b(\d+)\/(\d+) \(\d+%\)/.exec(line);
    if (m) o.progress.update(name, Number(m[1]), Number(m[2]));
  }
  const res = await child;
  const ok = res.exitCode === 0;
  const took = formatDuration((Date.now() - t0) / 1000);
  o.progress.finish(
    name,
    ok
      ? `${name} trained in ${took} (log ${log})`
      : `${name} FAILED (exit ${res.exitCode ?? res.signal}) after ${took}; see ${log}`,
  );
  return ok;
}
