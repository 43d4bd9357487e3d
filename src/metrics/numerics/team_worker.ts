/** A linear-algebra helper (team.ts): enters each posted job, takes strips, leaves. */
import { parentPort } from 'node:worker_threads';
import { Ctrl, workStrips, type TeamJob } from './team.js';

parentPort?.on('message', (job: TeamJob) => {
  // Entering before taking a strip is what lets the caller know it must wait for us.
  Atomics.add(job.ctrl, Ctrl.Active, 1);
  try {
    workStrips(job, true);
  } finally {
    Atomics.sub(job.ctrl, Ctrl.Active, 1);
    Atomics.notify(job.ctrl, Ctrl.Active);
  }
});
