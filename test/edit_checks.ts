/**
 * Evidence that a finished editing run EDITED, read from its stored artifacts: with
 * `sources: reconstructed` a method that returns its input scores FID 0 and full preservation, so
 * finite metrics prove nothing. A run edits when (1) its hit rate beats the hit rate of the same
 * evaluation images left unedited (the judge applied to the sources themselves, re-rendered through
 * the world exactly as the run chose them) and (2) its pixels moved (artifacts/edits.png).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { initBackend } from '../src/backend/index.js';
import { loadWorld } from '../src/world/registry.js';
import { worldPart } from '../src/world/types.js';
import { evaluationSources, promptOf, type SourceMode } from '../src/methods/editing.js';

/**
 * Mean |edited − original| (per channel, images in [0, 1]) every editing run must exceed: a no-op
 * scores exactly 0 here (both rows quantised alike); measured quick runs change 0.03–0.27.
 */
const MIN_PIXEL_CHANGE = 0.01;
/**
 * How far a method's hit rate, pooled over its runs' images, must exceed the same images'
 * unedited hit rate (0 on every quick prompt measured: the sources lack the target attribute).
 */
const MIN_HIT_GAIN = 0.2;

/** The metrics every finished editing run on toyfaces reports. */
const EDIT_METRICS = [
  'fid',
  'clip_directional',
  'hit_rate',
  'preservation_rate',
  'identity',
  'tau_infer_s',
  'tau_train_s',
];

/** Asserts that a run's result.json metrics are all finite, naming the run and the metric when not. */
export function assertFiniteMetrics(metrics: Record<string, unknown>, label: string): void {
  for (const k of EDIT_METRICS)
    assert.ok(Number.isFinite(metrics[k] as number), `${label}${label ? ' ' : ''}${k} = ${metrics[k]}`);
}

/** Asserts that a method's runs edited (both criteria above), naming the numbers when not. */
export function assertEdits(method: string, runs: EditEvidence[]): void {
  const n = runs.reduce((s, r) => s + r.n, 0);
  const hit = runs.reduce((s, r) => s + r.hit_rate * r.n, 0) / n;
  const unedited = runs.reduce((s, r) => s + r.unedited_hit_rate * r.n, 0) / n;
  const detail = runs
    .map(
      (r) =>
        `${r.prompt}: hit ${r.hit_rate} vs unedited ${r.unedited_hit_rate}, pixel change ${r.pixel_change.toFixed(4)}`,
    )
    .join('; ');
  assert.ok(
    runs.length > 0 && hit >= unedited + MIN_HIT_GAIN,
    `${method} does not edit: hit rate ${hit.toFixed(3)} vs ${unedited.toFixed(3)} unedited (needs +${MIN_HIT_GAIN}) — ${detail}`,
  );
  for (const r of runs) {
    assert.ok(
      r.pixel_change > MIN_PIXEL_CHANGE,
      `${method} ${r.prompt}: mean |edited − original| ${r.pixel_change.toFixed(4)} ≤ ${MIN_PIXEL_CHANGE} — ${detail}`,
    );
  }
}

export interface EditEvidence {
  method: string;
  prompt: string;
  /** m: the evaluation images the rates are over. */
  n: number;
  hit_rate: number;
  /** The judge's hit rate on the unedited evaluation images (what a no-op scores). */
  unedited_hit_rate: number;
  /** Mean |edited − original| over the images in artifacts/edits.png (8-bit, so ±1/255). */
  pixel_change: number;
  images: number;
}

/**
 * Mean |bottom row − top row| of artifacts/edits.png (saveEditGrid in src/methods/editing.ts: the
 * first c originals over their edits, 32×32 images drawn at zoom 4 with a 2-pixel gap), read at
 * one screen pixel per image pixel.
 */
function gridPixelChange(pngPath: string, size = 32, zoom = 4, gap = 2): { change: number; images: number } {
  const png = PNG.sync.read(readFileSync(pngPath));
  const cell = size * zoom + gap;
  const cols = Math.round((png.width - gap) / cell);
  if (cols * cell + gap !== png.width || 2 * cell + gap !== png.height)
    throw new Error(`${pngPath}: not a 2-row grid of ${size}px images at zoom ${zoom}`);
  let sum = 0;
  for (let k = 0; k < cols; k++) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const px = gap + k * cell + x * zoom;
        const top = ((gap + y * zoom) * png.width + px) * 4;
        const bottom = ((gap + cell + y * zoom) * png.width + px) * 4;
        for (let c = 0; c < 3; c++) sum += Math.abs(png.data[bottom + c] - png.data[top + c]);
      }
    }
  }
  return { change: sum / (255 * cols * size * size * 3), images: cols };
}

/** The judge's hit rate on the run's m evaluation images before any edit. */
async function uneditedHitRate(world: string, promptId: string, m: number, mode: SourceMode): Promise<number> {
  await initBackend('wasm');
  const w = loadWorld(world);
  const prompt = promptOf(w, promptId);
  const { images, w: codes } = await evaluationSources(w, promptId, m, mode);
  codes.dispose();
  const s = w.imageSize;
  const { tensor4d } = await import('@tensorflow/tfjs-core');
  const x = tensor4d(images, [m, s, s, 3]);
  const judge = worldPart(w, 'judge', 'edit checks');
  const classes = await judge.predict(x);
  x.dispose();
  const a = judge.names.length;
  const col = judge.names.indexOf(prompt.attribute);
  const target = judge.valuesOf(prompt.attribute).indexOf(prompt.target);
  let hits = 0;
  for (let i = 0; i < m; i++) if (classes[i * a + col] === target) hits++;
  return hits / m;
}

/** Reads a finished run's result/config and artifacts into the evidence above. */
export async function editEvidence(runDir: string): Promise<EditEvidence> {
  const res = JSON.parse(readFileSync(join(runDir, 'result.json'), 'utf-8')) as {
    metrics: { prompt: string; hit_rate: number; n: number; world: string };
  };
  const cfg = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf-8')) as {
    method: { name: string; params: { sources?: SourceMode } };
  };
  const { prompt, hit_rate, n, world } = res.metrics;
  const { change, images } = gridPixelChange(join(runDir, 'artifacts', 'edits.png'));
  return {
    method: cfg.method.name,
    prompt,
    n,
    hit_rate,
    unedited_hit_rate: await uneditedHitRate(world, prompt, n, cfg.method.params.sources ?? 'reconstructed'),
    pixel_change: change,
    images,
  };
}
