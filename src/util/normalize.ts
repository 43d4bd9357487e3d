/** Min–max normalisation to [0, 1] (HQS's N̄ and H̄ over the scanned t, Eq. 11–12; the report's HQS curves). */
export function minMax(v: number[]): number[] {
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  // A flat curve carries no ranking: every t normalises to 0 rather than dividing by zero.
  return v.map((x) => (hi > lo ? (x - lo) / (hi - lo) : 0));
}
