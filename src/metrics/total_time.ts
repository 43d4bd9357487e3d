/**
 * Total time of editing m images for each of n prompts (paper Eq. 13–15):
 *   diffusion-style methods   τ = m·n·τ_infer                       (Eq. 13)
 *   trained manipulators      τ = n·τ_train + m·n·τ_infer           (Eq. 14)
 * and the break-even m above which method A (with training) is cheaper than method B:
 *   m* = (τ_train,A − τ_train,B) / (τ_infer,B − τ_infer,A)          (Eq. 15, general form)
 */
export interface MethodTimes {
  /** Seconds of training per prompt (0 for methods that do not train). */
  train_s: number;
  /** Seconds of inference per image. */
  infer_s: number;
}

export function totalTime(t: MethodTimes, m: number, n: number): number {
  return n * t.train_s + m * n * t.infer_s;
}

/** The m from which A's total is below B's; null when A never catches up (or is never behind). */
export function breakEven(a: MethodTimes, b: MethodTimes): number | null {
  const dInfer = b.infer_s - a.infer_s;
  const dTrain = a.train_s - b.train_s;
  if (dInfer < 0) return null; // A costs more per image: for large m it always loses
  if (dInfer === 0) return dTrain < 0 ? 0 : null;
  return Math.max(0, dTrain / dInfer);
}
