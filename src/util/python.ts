/**
 * The Python that reference computations (tests, benchmarks) run on: the first of `python3` and
 * Debian's /usr/bin/python3 that imports every module asked for. Never used by metrics themselves.
 */
import { spawnSync } from 'node:child_process';

const found = new Map<string, string | null>();

export function pythonWith(modules: string[]): string | null {
  const key = modules.join(',');
  if (!found.has(key)) {
    const hit = ['python3', '/usr/bin/python3'].find(
      (py) => spawnSync(py, ['-c', `import ${key}`], { stdio: 'ignore' }).status === 0,
    );
    found.set(key, hit ?? null);
  }
  return found.get(key)!;
}

/**
 * The Python for a reference computation, or a one-line error with the install line. `make test`
 * checks the same thing before any test runs (bin/check-prereqs.sh), so inside the suite this only
 * fires for a test file run on its own.
 */
export function requirePython(modules: string[]): string {
  const py = pythonWith(modules);
  if (!py)
    throw new Error(
      `no python3 with ${modules.join(', ')}: apt-get install -y ${modules.map((m) => `python3-${m}`).join(' ')} (bin/check-prereqs.sh lists all the tests need)`,
    );
  return py;
}
