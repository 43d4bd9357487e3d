/**
 * The files of a method process that make up its identity: the arguments of its command that
 * name files, and the files or folders it lists under `files:`, by content hash.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { sha256, sha256File } from '../util/hash.js';

/** Arguments that can only be meant as a script: a path, or a name with a script's extension. */
const LOOKS_LIKE_FILE = /[/\\]|\.(py|sh|bash|r|jl|js|mjs|cjs|rb|pl|lua|m)$/i;

/**
 * The absolute path `arg` names relative to the experiment file's folder, or null where it names
 * no file (a program found on PATH, an option, a word). `always`: it must name a file or folder
 * (`files:`); otherwise an argument that looks like a script but is missing is an error too.
 */
export function pluginFile(dir: string, arg: string, where: string, always: boolean): string | null {
  if (!always && arg.startsWith('-')) return null;
  const path = resolve(dir, arg);
  if (existsSync(path)) {
    if (statSync(path).isFile()) return path;
    if (always) return path;
    return null;
  }
  if (always || LOOKS_LIKE_FILE.test(arg)) throw new UserError(`${where}: ${arg}: not found (relative to ${dir})`);
  return null;
}

/** Bytecode caches and hidden files change when a plugin runs, not when it is edited. */
const skipped = (name: string) => name.startsWith('.') || name === '__pycache__' || name.endsWith('.pyc');

/** A file's SHA-256, or a folder's: over the sorted relative paths and hashes of its files. */
export function hashPath(path: string): string {
  if (statSync(path).isFile()) return sha256File(path);
  const lines: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      if (skipped(name)) continue;
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else lines.push(`${relative(path, p)}\0${sha256File(p)}`);
    }
  };
  walk(path);
  return sha256(lines.join('\n'));
}
