/** What a run's result.json holds: JSON scalars, lists of them, and objects of these, nested. */
export type Scalar = number | string | boolean | null;
export type ResultValue = Scalar | Scalar[] | { [k: string]: ResultValue };
