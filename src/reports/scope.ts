/**
 * What a page's numbers stand on: its title (the experiment files' `title:`, else their names) and
 * its scope — the profile the runs used, how many prompts, seeds and evaluation images, what the
 * profile changes, and what the full run would have. Every page states it in its title and caption,
 * so a quick page cannot pass for the result.
 */
import { readWithIncludes, loadExperiment, type LoadOptions } from '../experiments/load.js';
import type { PlannedRun } from '../experiments/expand.js';
import { planAll } from '../experiments/plan.js';
import { escapeHtml } from './html.js';

export interface Counts {
  prompts: number;
  seeds: number;
  /** Evaluation images per run (distinct values; empty when unknown). */
  images: number[];
}

export interface Scope extends Counts {
  profile: string | null;
  /** What the profile changes ("iterations 20"), over the page's files. */
  overrides: string[];
  /** The same files without the profile; null without a profile. */
  full: Counts | null;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function counts(planned: PlannedRun[], finishedImages: number[]): Counts {
  const params = planned.map((p) => p.config.method.params);
  const prompts = new Set(params.map((p) => JSON.stringify(p.prompt ?? null))).size;
  const seeds = new Set(planned.map((p) => p.config.seed)).size;
  const planImages = params.map((p) => p.eval_images).filter((x): x is number => typeof x === 'number');
  const images = [...new Set(finishedImages.length ? finishedImages : planImages)].sort((a, b) => a - b);
  return { prompts, seeds, images };
}

/** The page's title: the files' titles (else experiment names), the first one heading the page. */
export function pageTitles(files: string[], opts: LoadOptions): string[] {
  const titles = files.map((f) => {
    const { experiment } = loadExperiment(f, opts);
    return experiment.title ?? experiment.name;
  });
  return [...new Set(titles)];
}

export function pageScope(files: string[], opts: LoadOptions, planned: PlannedRun[], finishedImages: number[]): Scope {
  const profile = opts.profile ?? null;
  // Key → the values the files' profiles give it ("eval_images 16/8" when two files differ).
  const byKey = new Map<string, Set<string>>();
  if (profile) {
    for (const f of files) {
      const profiles = (readWithIncludes(f).value.profiles ?? {}) as Record<string, Record<string, unknown>>;
      for (const [k, v] of Object.entries(profiles[profile] ?? {})) {
        if (k === 'seeds' || k === 'sweep' || k.startsWith('sweep.')) continue; // counted as prompts and seeds
        const key = k.replace(/^method\.params\./, '');
        byKey.set(key, (byKey.get(key) ?? new Set()).add(typeof v === 'string' ? v : JSON.stringify(v)));
      }
    }
  }
  const overrides = [...byKey].map(([k, vs]) => `${k} ${[...vs].join('/')}`);
  const full = profile ? counts(planAll(files, { sets: opts.sets }), []) : null;
  return { profile, overrides, full, ...counts(planned, finishedImages) };
}

const imagesText = (c: Counts) => (c.images.length ? `, ${c.images.join('/')} images per run` : '');
const countsText = (c: Counts) => `${plural(c.prompts, 'prompt')}, ${plural(c.seeds, 'seed')}${imagesText(c)}`;

/** "quick profile: 2 prompts, 1 seed, 16 images per run, shortened settings" (the title's part). */
export function scopePhrase(s: Scope): string {
  const what = s.profile ? `${s.profile} profile` : 'full settings';
  const shortened = s.overrides.some((o) => !/^eval_images /.test(o)) ? ', shortened settings' : '';
  return `${what}: ${countsText(s)}${shortened}`;
}

/** The caption's sentence on the scope (escaped HTML). */
export function scopeCaption(s: Scope, prefix = 'Every number on this page comes from'): string {
  const base = `${prefix} ${escapeHtml(countsText(s))}`;
  if (!s.profile) return `<b>Full settings</b> (no profile). ${base}.`;
  const changes = s.overrides.length ? `; the profile sets ${escapeHtml(s.overrides.join(', '))}` : '';
  const full = s.full ? ` Without it the same files run ${escapeHtml(countsText(s.full))}.` : '';
  const warn = " A profile run checks the pipeline: its numbers are not the benchmark's result.";
  return `<b>${escapeHtml(s.profile)} profile</b> (--profile ${escapeHtml(s.profile)}). ${base}${changes}.${full}${warn}`;
}
