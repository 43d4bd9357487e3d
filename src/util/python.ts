/**
 * The Python that reference computations (tests, benchmarks) run on: the first of `python3` and
 * Debian's /usr/bin/python3 that imports every module asked for. Never used by metrics themselves.
 */
import { spawnSync } from 'node:child_process';

const found = new Map<string, string | null>();

export function pythonWith(modules: string[]): string | null {
  const key = modules.join(',');
  if (!found.has(key)) {
    const hit = ['python3', '/usr/bin/python3'].find((py) => spawnSync(py, ['-c', `import ${key}`], { stdio: 'ignore' }).status === 0);
    found.set(key, hit ?? null);
  }
  return found.get(key)!;
}

export function requirePython(modules: string[]): string {
  const py = pythonWith(modules);
  if (!py) throw new Error(`no python3 with ${modules.join(', ')} (apt-get install ${modules.map((m) => `python3-${m}`).join(' ')})`);
  return py;
}
