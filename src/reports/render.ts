/**
 * Server-side rendering of Vega-Lite specs: compile to Vega, run a headless vega View, export
 * SVG (inlined in pages, so they show without JavaScript) and PNG (resvg; for papers and the
 * README). Specs are validated against the JSON schema shipped in the vega-lite package.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { Resvg } from '@resvg/resvg-js';
import { Ajv } from 'ajv';

const require = createRequire(import.meta.url);
type Validator = ((spec: unknown) => boolean) & { errors?: unknown };
let validator: Validator | null = null;

/** Schema errors of a spec (empty when valid). */
export function validateSpec(spec: TopLevelSpec): string[] {
  if (!validator) {
    const schema = JSON.parse(readFileSync(require.resolve('vega-lite/vega-lite-schema.json'), 'utf-8')) as object;
    const ajv = new Ajv({ allErrors: false, strict: false, validateFormats: false });
    // ajv's compiled function type is generic over the schema; we only call it and read its errors.
    validator = ajv.compile(schema) as unknown as Validator;
  }
  const v = validator!;
  if (v(spec)) return [];
  const errors = (v.errors ?? []) as Array<{ instancePath: string; message?: string }>;
  return errors.map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export function svgToPng(svg: string, scale = 2): Buffer {
  const fitTo = { mode: 'zoom', value: scale } as const;
  const r = new Resvg(svg, { fitTo, font: { loadSystemFonts: true }, background: 'white' });
  return r.render().asPng();
}
