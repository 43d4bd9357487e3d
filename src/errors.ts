/**
 * Errors a user can fix: printed as one line (no stack) and mapped to exit code 2.
 * The message always starts with the file (or flag) at fault, then the key path.
 */
export class UserError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** A run that failed (not bad input): printed as one line, exit code 1. */
export class RunFailedError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'RunFailedError';
  }
}

/** Thrown when training produces NaN/Inf: the run stops with this reason recorded. */
export class NonFiniteError extends Error {}

/** `file: a.b.c: message`, leaving out parts that are empty. */
export function located(file: string | undefined, path: Array<string | number>, message: string): string {
  const where = path.length ? path.map(String).join('.') : '';
  return [file, where, message].filter((p) => p !== undefined && p !== '').join(': ');
}
