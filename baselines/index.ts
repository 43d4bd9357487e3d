/** The baseline methods, one file each; registered with the built-in methods. */
import { ddib } from './ddib.js';
import { diffae } from './diffae.js';
import { sdedit } from './sdedit.js';
import { styleclip } from './styleclip.js';

export const BASELINES = [sdedit, ddib, diffae, styleclip];
