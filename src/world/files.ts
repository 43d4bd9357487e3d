/**
 * The files a world loads from outside the repository (checkpoints, image folders), by role. A
 * world declares its roles (what each is, where a user gets it); an experiment names them under
 * `checkpoints:` (paths relative to the file) or $SDD_CHECKPOINTS holds them under the roles'
 * default names. Paths are not part of run ids (the same run on another machine has other paths);
 * the weights' hashes are, through the world's fingerprint.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';

export interface FileRole {
  kind: 'file' | 'dir';
  /** What the role is for, one line. */
  describe: string;
  /** Where a user gets it (repository ids, file names, the converter to run). */
  source: string;
  /** Its name under $SDD_CHECKPOINTS. */
  defaultName: string;
  /** Loads it strictly (configs, every tensor, shapes) and summarises it in a few words; throws one line otherwise. */
  verify?(path: string): string;
  /** For a role the world can do without: what is left out when it is absent. */
  optional?: string;
}

export type WorldFiles = Record<string, string>;

const ROLES = new Map<string, Record<string, FileRole>>();

/** Worlds that load outside files register their roles (the registry imports the worlds). */
export function registerFileRoles(world: string, roles: Record<string, FileRole>): void {
  ROLES.set(world, roles);
}

export function fileRoles(world: string): Record<string, FileRole> {
  return ROLES.get(world) ?? {};
}

/** The experiment's paths over $SDD_CHECKPOINTS' defaults, absolute; roles with neither are left out. */
export function resolveWorldFiles(world: string, given: WorldFiles, env = process.env.SDD_CHECKPOINTS): WorldFiles {
  const out: WorldFiles = {};
  for (const [role, r] of Object.entries(fileRoles(world))) {
    if (given[role]) out[role] = resolve(given[role]);
    // An optional role is taken from $SDD_CHECKPOINTS only when it is there.
    else if (env && (!r.optional || existsSync(resolve(env, r.defaultName)))) out[role] = resolve(env, r.defaultName);
  }
  return out;
}

export interface RoleStatus {
  role: string;
  path: string | null;
  /** Present, or an optional role nobody named. */
  ok: boolean;
  absent: boolean;
  problem: string | null;
  role_info: FileRole;
}

/** Each role: found (a file or folder of the right kind) or why not. */
export function checkWorldFiles(world: string, files: WorldFiles): RoleStatus[] {
  return Object.entries(fileRoles(world)).map(([role, r]) => {
    const path = files[role] ?? null;
    let problem: string | null = null;
    if (!path && r.optional) return { role, path, ok: true, absent: true, problem: null, role_info: r };
    if (!path) problem = 'not given (experiment checkpoints: or $SDD_CHECKPOINTS)';
    else if (!existsSync(path)) problem = `${path}: not found`;
    else if (statSync(path).isDirectory() !== (r.kind === 'dir'))
      problem = `${path}: expected a ${r.kind === 'dir' ? 'folder' : 'file'}`;
    return { role, path, ok: problem === null, absent: false, problem, role_info: r };
  });
}

/** One line naming every missing role, where to get it, and the command that lists them all. */
export function requireWorldFiles(world: string, files: WorldFiles, origin: string): void {
  const missing = checkWorldFiles(world, files).filter((s) => !s.ok);
  if (missing.length === 0) return;
  const what = missing.map((s) => `${s.role} (${s.problem}; get: ${s.role_info.source})`).join('; ');
  throw new UserError(
    `${origin}: world '${world}' is missing ${missing.length} checkpoint role(s): ${what}. \`sdd checkpoints list\` shows them all`,
  );
}

// The files of the world this process runs (a run's child reads them from the run folder).
let current: WorldFiles = {};

export function setWorldFiles(files: WorldFiles): void {
  current = { ...files };
}

export function worldFiles(): WorldFiles {
  return current;
}

const WORLD_FILES_JSON = 'world.json';

export function worldFilesPath(runDir: string): string {
  return join(runDir, WORLD_FILES_JSON);
}
