/** sdd world grid | manifest — look at and list the embedded world's data. */
import { writeFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { stringify } from 'csv-stringify/sync';
import { UserError } from '../../errors.js';
import { EDITABLE, EDITABLE_NAMES, ATTRIBUTE_NAMES, withAttribute } from '../../../datasets/toyfaces/attributes.js';
import { render } from '../../../datasets/toyfaces/render.js';
import { grid, writePng } from '../../util/image_io.js';
import { SPLITS, face, manifest, type Split } from '../../../datasets/toyfaces/world.js';
import { outputFile } from '../paths.js';

interface WorldArgs {
  action: string;
  split: string;
  n: number;
  size: number;
  out?: string;
  format: string;
}

export function worldCommand(_s: (c: number) => void): CommandModule<object, WorldArgs> {
  return {
    command: 'world <action>',
    describe: 'grid: a PNG of faces and their single-attribute edits; manifest: attributes of every image (csv|jsonl)',
    builder: (y) =>
      y
        .positional('action', { choices: ['grid', 'manifest'] as const, demandOption: true })
        .option('split', { choices: Object.keys(SPLITS), default: 'test' })
        .option('n', { type: 'number', default: 8, describe: 'images (grid: rows)' })
        .option('size', { type: 'number', default: 32, choices: [32, 64] })
        .option('out', { type: 'string', describe: 'output file (grid: required; manifest: default stdout)' })
        .option('format', { choices: ['csv', 'jsonl'], default: 'csv' }) as never,
    handler: (a) => {
      const split = a.split as Split;
      if (!Number.isInteger(a.n) || a.n < 1 || a.n > SPLITS[split].count)
        throw new UserError(`--n: expected 1..${SPLITS[split].count}, got ${a.n}`);
      if (a.out !== undefined) outputFile('--out', a.out);
      if (a.action === 'grid') {
        if (!a.out) throw new UserError('--out: required for grid (a .png path)');
        // Each row: the face, then one edit per editable attribute (the next value along).
        const images: Float32Array[] = [];
        for (let i = 0; i < a.n; i++) {
          const f = face(split, i);
          images.push(render(f, a.size));
          for (const k of EDITABLE_NAMES) {
            const vals = EDITABLE[k] as readonly string[];
            const next = vals[(vals.indexOf(f.attrs[k]) + 1) % vals.length];
            images.push(render(withAttribute(f, k, next as never), a.size));
          }
        }
        const g = grid(images, a.size, 1 + EDITABLE_NAMES.length, a.size === 32 ? 4 : 2);
        writePng(a.out, g.data, g.width, g.height);
        process.stdout.write(`wrote ${a.out}: ${a.n} faces × (original + ${EDITABLE_NAMES.join(', ')})\n`);
        return;
      }
      const rows = manifest(split, a.n);
      const text =
        a.format === 'jsonl'
          ? rows.map((r) => JSON.stringify(r)).join('\n') + '\n'
          : stringify(
              rows.map((r) => [r.split, r.index, r.seed, ...ATTRIBUTE_NAMES.map((k) => r.attrs[k]), r.caption]),
              { header: true, columns: ['split', 'index', 'seed', ...ATTRIBUTE_NAMES, 'caption'] },
            );
      if (a.out) writeFileSync(a.out, text);
      else process.stdout.write(text);
    },
  };
}
