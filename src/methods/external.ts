/**
 * `external`: an editing method in another process, in any language, through the method
 * contract (docs/method-contract.md). The harness writes the run's inputs into contract/in/,
 * runs `command` in the run folder, forwards its progress and training curve, and evaluates the
 * edited images it returns with the same evaluator as every in-process method (editResult).
 * The command's files are hashed into the run's identity (plan).
 */
import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { loadWorld } from '../world/registry.js';
import { promptOf, sourcesParam } from './editing.js';
import { executeContract } from './contract_exec.js';
import { hashPath, pluginFile } from './contract_files.js';
import type { Method } from './types.js';

const dim = z.union([z.number().int().positive(), z.enum(['m', 'n'])]);

export const externalParams = z.strictObject({
  command: z
    .array(z.string().min(1))
    .min(1)
    .describe(
      'the method process: program and arguments; file arguments relative to the experiment file, hashed into the run id; $SDD_PYTHON: that interpreter (default python3)',
    ),
  files: z
    .array(z.string().min(1))
    .default([])
    .describe('further files or folders the process reads, hashed into the run id'),
  settings: z
    .record(z.string(), z.unknown())
    .default({})
    .describe("the process's own settings, passed as they are: it keeps no defaults of its own"),
  hang_timeout_s: z
    .number()
    .positive()
    .default(300)
    .describe('killed after this long without progress (progress.json or metrics.jsonl)'),
  prompt: z.string().describe('edit prompt id of the world'),
  eval_images: z.number().int().positive().default(100).describe('m: test images edited'),
  sources: sourcesParam,
  train_images: z.number().int().min(0).default(0).describe('n: training images (or codes) written for it'),
  noise: z
    .record(z.string().regex(/^[a-z0-9_]+$/), z.array(dim).min(1))
    .default({})
    .describe("noise streams it must use: name → shape ('m', 'n' allowed)"),
  file_sha256: z
    .record(z.string(), z.string())
    .default({})
    .describe('set when the run is planned: the hashes of its files'),
});
export type ExternalParams = z.infer<typeof externalParams>;

const PYTHON = '$SDD_PYTHON';

export const external: Method<ExternalParams> = {
  name: 'external',
  version: 1,
  description: 'A method in another process (any language) through the run-folder contract (docs/method-contract.md).',
  params: externalParams,
  resources: { cpus: 2, mem: '8G', time: '2:00:00' },
  plan(params, { dir }) {
    const hashes: Record<string, string> = {};
    const resolveArg = (arg: string, where: string, always: boolean) => {
      const path = pluginFile(dir, arg, where, always);
      if (!path) return { arg, id: arg as unknown };
      hashes[path] = hashPath(path);
      return {
        arg: path,
        id: { [statSync(path).isDirectory() ? 'dir' : 'file']: basename(path), sha256: hashes[path] },
      };
    };
    const command = params.command.map((a, i) =>
      i === 0 && a === PYTHON ? { arg: a, id: a } : resolveArg(a, `method.params.command.${i}`, false),
    );
    const files = params.files.map((f, i) => resolveArg(f, `method.params.files.${i}`, true));
    // The hashes stand in for the files; how long a hang is waited for changes no result.
    const { file_sha256: _planned, hang_timeout_s: _wait, ...rest } = params;
    return {
      params: { ...params, command: command.map((c) => c.arg), files: files.map((f) => f.arg), file_sha256: hashes },
      identity: { ...rest, command: command.map((c) => c.id), files: files.map((f) => f.id) },
    };
  },
  async run(ctx) {
    const p = ctx.params;
    for (const [path, sha] of Object.entries(p.file_sha256)) {
      if (!existsSync(path)) throw new UserError(`method.params: ${path}: gone since the run was planned`);
      if (hashPath(path) !== sha)
        throw new UserError(
          `method.params: ${path}: changed since the run was planned (plan it again: its run id changes with it)`,
        );
    }
    const world = loadWorld(ctx.world);
    const prompt = promptOf(world, p.prompt);
    const command = p.command.map((a, i) => (i === 0 && a === PYTHON ? (process.env.SDD_PYTHON ?? 'python3') : a));
    const { result, out, wall_s } = await executeContract(ctx, {
      method: 'external',
      params: p,
      inputs: p,
      world,
      prompt,
      command,
      hangTimeoutS: p.hang_timeout_s,
    });
    // argv: as it ran ($SDD_PYTHON resolved on this host).
    const plugin = {
      command: p.command,
      argv: command,
      file_sha256: p.file_sha256,
      wall_s,
      peak_memory_bytes: out.peakMemory,
    };
    return { ...result, plugin, plugin_env: out.env };
  },
};
