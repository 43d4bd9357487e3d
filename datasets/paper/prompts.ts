/**
 * The paper's ten edit prompts (Table 1: m = 100 images × n = 10 prompts): its named examples
 * (white hair, blond hair, angry, smile, side view, old, beard, glasses: Fig. 1, 4, 7) and the
 * released configs' "happy" and "surprised". As in the real world, there is no attribute judge:
 * attribute/target repeat the id and source is empty.
 */
import type { EditPromptSpec } from '../../src/world/types.js';
import { REAL_PROMPTS } from '../real/prompts.js';

export const PAPER_PROMPTS: EditPromptSpec[] = [
  ...REAL_PROMPTS,
  {
    id: 'happy',
    text: 'a happy face',
    sourceText: 'a face',
    group: 'expression',
    attribute: 'happy',
    source: '',
    target: 'happy',
  },
  {
    id: 'surprised',
    text: 'a surprised face',
    sourceText: 'a face',
    group: 'expression',
    attribute: 'surprised',
    source: '',
    target: 'surprised',
  },
];
