/** Experiment YAML, read safely. */
import { parseDocument } from 'yaml';
import { UserError } from '../errors.js';

/** YAML with the core schema only: no tags that build objects or run code, no duplicate keys. */
export function parseYamlSafe(text: string, file: string): unknown {
  const doc = parseDocument(text, { schema: 'core', uniqueKeys: true, merge: false, prettyErrors: true });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) {
    const pos = problem.linePos?.[0];
    const at = pos ? `line ${pos.line}, column ${pos.col}` : 'YAML';
    // prettyErrors computes linePos; its message repeats the position, which we drop.
    const msg = problem.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    throw new UserError(`${file}: ${at}: ${msg}`);
  }
  return doc.toJS({ maxAliasCount: 50 });
}
