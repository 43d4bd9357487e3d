/**
 * Edit prompts of the real world: the paper's examples (Fig. 1, 4, 7 and Table 1's attributes).
 * sourceText is the neutral text directional CLIP measures against. No attribute judge exists in
 * this world, so attribute/target repeat the prompt id (unused) and source is empty.
 */
import type { EditPromptSpec } from '../../src/world/types.js';

const prompt = (id: string, text: string, group: string): EditPromptSpec => ({
  id,
  text,
  sourceText: 'a face',
  group,
  attribute: id,
  source: '',
  target: id,
});

export const REAL_PROMPTS: EditPromptSpec[] = [
  prompt('white_hair', 'a face with white hair', 'hair'),
  prompt('blond_hair', 'a face with blond hair', 'hair'),
  prompt('angry', 'an angry face', 'expression'),
  prompt('smile', 'a smiling face', 'expression'),
  prompt('side_view', 'a face in side view', 'pose'),
  prompt('old', 'an old face', 'age'),
  prompt('beard', 'a face with a beard', 'hair'),
  prompt('glasses', 'a face with glasses', 'accessory'),
];
