/**
 * The experiment commands used to live here; each now has its own file (run, plan, status,
 * validate, schema). Kept for the modules that import planAll from here (report, regress and their
 * tests): planning lives with the experiments, since the report pages plan too.
 */
export { planAll } from '../../experiments/plan.js';
