/** The comparison every parity test makes: max |Δ| ≤ rel · max |reference|, reported as a diagnostic. */
import assert from 'node:assert/strict';

/** max |got − ref| and max |ref|. */
export function maxDiff(got: ArrayLike<number>, exp: ArrayLike<number>): { maxDiff: number; maxRef: number } {
  let maxRef = 0;
  let diff = 0;
  for (let i = 0; i < exp.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(exp[i]));
    diff = Math.max(diff, Math.abs(got[i] - exp[i]));
  }
  return { maxDiff: diff, maxRef };
}

export function assertClose(
  t: { diagnostic(m: string): void },
  what: string,
  got: ArrayLike<number>,
  exp: ArrayLike<number>,
  rel = 1e-4,
): void {
  assert.equal(got.length, exp.length, `${what}: ${got.length} values, the reference has ${exp.length}`);
  const { maxDiff: diff, maxRef } = maxDiff(got, exp);
  t.diagnostic(`${what}: max |Δ| ${diff.toExponential(2)} (max |ref| ${maxRef.toFixed(3)})`);
  assert.ok(diff <= rel * maxRef, `${what}: max |Δ| ${diff} > ${rel} × max |ref| ${maxRef}`);
}
