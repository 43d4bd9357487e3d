/** The comparison every parity test makes: max |Δ| ≤ rel · max |reference|, reported as a diagnostic. */
import assert from 'node:assert/strict';

export function assertClose(t: { diagnostic(m: string): void }, what: string, got: ArrayLike<number>, exp: ArrayLike<number>, rel = 1e-4): void {
  assert.equal(got.length, exp.length, `${what}: ${got.length} values, the reference has ${exp.length}`);
  let maxRef = 0;
  let maxDiff = 0;
  for (let i = 0; i < exp.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(exp[i]));
    maxDiff = Math.max(maxDiff, Math.abs(got[i] - exp[i]));
  }
  t.diagnostic(`${what}: max |Δ| ${maxDiff.toExponential(2)} (max |ref| ${maxRef.toFixed(3)})`);
  assert.ok(maxDiff <= rel * maxRef, `${what}: max |Δ| ${maxDiff} > ${rel} × max |ref| ${maxRef}`);
}
