/**
 * Checks of user-given paths before any work, so a typo fails at once as one line naming the
 * flag and the path (exit 2), not after minutes of work or as a file-system stack trace.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UserError } from '../errors.js';

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

/** A file to write: not a folder, and its folder exists. */
export function outputFile(flag: string, path: string): string {
  if (isDir(path)) throw new UserError(`${flag}: ${path}: is a folder, expected a file name`);
  const parent = dirname(resolve(path));
  if (!isDir(parent)) throw new UserError(`${flag}: ${path}: folder ${parent} does not exist`);
  return path;
}

/** A folder to write into (created if missing): not an existing file, nor under one. */
export function outputFolder(flag: string, path: string): string {
  let p = resolve(path);
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  if (!statSync(p).isDirectory()) {
    const what = p === resolve(path) ? 'is a file' : `${p} is a file`;
    throw new UserError(`${flag}: ${path}: ${what}, expected a folder`);
  }
  return path;
}

/**
 * The run store named by --store: a folder. `mustExist` for commands that only read it (ls,
 * show, rm, gc), where a missing one is a typo rather than a store to start.
 */
export function storeFolder(path: string | undefined, mustExist: boolean): string | undefined {
  if (path === undefined) return undefined;
  if (mustExist && !existsSync(path)) throw new UserError(`--store: ${path}: no such folder`);
  return outputFolder('--store', path);
}
