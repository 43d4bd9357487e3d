/**
 * sdd fid PATH PATH — like pytorch-fid's CLI: each PATH is a folder of PNG/JPEG images or an .npz
 * with `mu` and `sigma`. `--save-stats IN OUT.npz` writes IN's statistics as pytorch-fid does.
 */
import { existsSync, statSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { UserError } from '../../errors.js';
import { backendChoice, initBackend } from '../../backend/index.js';
import { extractorNames, folderFeatures, loadExtractor, type Extractor } from '../../metrics/features.js';
// Registers every world's feature extractor.
import '../../world/registry.js';
// Registers the world-independent extractors (inception).
import '../../metrics/inception.js';
import { FeatureStats } from '../../metrics/stats.js';
import { frechetDistance } from '../../metrics/fid.js';
import { readNpz, writeNpz, NpyError } from '../../metrics/npy.js';
import { outputFile } from '../paths.js';

interface Stats {
  mu: Float64Array;
  sigma: Float64Array;
  n: number | null;
  resize: string | null;
}

async function statsOf(path: string, ex: () => Promise<Extractor>): Promise<Stats> {
  if (!existsSync(path)) throw new UserError(`${path}: no such file or folder`);
  if (!statSync(path).isDirectory()) {
    if (!path.endsWith('.npz')) throw new UserError(`${path}: expected a folder of images or a .npz with mu and sigma`);
    let z;
    try {
      z = readNpz(path);
    } catch (e) {
      throw new UserError((e as NpyError).message);
    }
    const mu = z.get('mu');
    const sigma = z.get('sigma');
    if (!mu || !sigma) throw new UserError(`${path}: needs arrays 'mu' and 'sigma' (has ${[...z.keys()].join(', ')})`);
    const d = mu.data.length;
    if (sigma.data.length !== d * d)
      throw new UserError(`${path}: sigma has shape [${sigma.shape}], expected [${d}, ${d}]`);
    return { mu: mu.data, sigma: sigma.data, n: null, resize: null };
  }
  const e = await ex();
  const { features, n, resize } = await folderFeatures(path, e);
  if (n < 2) throw new UserError(`${path}: needs at least 2 images for a covariance`);
  const st = new FeatureStats(e.dims);
  st.add(features, n);
  return { mu: st.mean(), sigma: st.covariance(), n, resize };
}

interface FidArgs {
  paths: string[];
  features: string;
  weights?: string;
  json: boolean;
  'save-stats': boolean;
  backend?: string;
}

export function fidCommand(_s: (c: number) => void): CommandModule<object, FidArgs> {
  return {
    command: 'fid <paths..>',
    describe: 'FID between two image folders or .npz statistics (pytorch-fid compatible)',
    builder: (y) =>
      y
        .positional('paths', { type: 'string', array: true, demandOption: true })
        .option('features', {
          type: 'string',
          default: 'toyfaces-featnet',
          describe: `feature extractor (${extractorNames().join(', ')})`,
        })
        .option('weights', {
          type: 'string',
          describe:
            "the extractor's weights file (inception: pytorch-fid's weights converted by tools/convert_pytorch_fid_inception.py)",
        })
        .option('json', { type: 'boolean', default: false })
        .option('save-stats', {
          type: 'boolean',
          default: false,
          describe: "PATHS are IN OUT.npz: write IN's mu and sigma",
        }) as never,
    handler: async (a) => {
      if (a.paths.length !== 2)
        throw new UserError(`fid: expected two paths, got ${a.paths.length} (${a.paths.join(' ')})`);
      if (a['save-stats']) outputFile('--save-stats', a.paths[1]);
      await initBackend(backendChoice(a.backend));
      let extractor: Extractor | null = null;
      const ex = async () => (extractor ??= await loadExtractor(a.features, { weights: a.weights }));
      if (a['save-stats']) {
        const [src, out] = a.paths;
        if (!out.endsWith('.npz')) throw new UserError(`${out}: the output of --save-stats must end in .npz`);
        const s = await statsOf(src, ex);
        const d = s.mu.length;
        writeNpz(out, { mu: { shape: [d], data: s.mu }, sigma: { shape: [d, d], data: s.sigma } });
        process.stdout.write(`wrote ${out} (${d}-d, n=${s.n ?? '?'})\n`);
        return;
      }
      const s1 = await statsOf(a.paths[0], ex);
      const s2 = await statsOf(a.paths[1], ex);
      if (s1.mu.length !== s2.mu.length)
        throw new UserError(`fid: dimensions differ (${s1.mu.length} vs ${s2.mu.length})`);
      const r = frechetDistance(s1.mu, s1.sigma, s2.mu, s2.sigma);
      const e = extractor as Extractor | null;
      const out = {
        fid: r.fid,
        n1: s1.n,
        n2: s2.n,
        dims: r.dims,
        features: e?.id ?? null,
        weights_sha256: e?.weightsSha256 ?? null,
        resize: [s1.resize, s2.resize],
        clamped_eigenvalues: r.clamped,
      };
      process.stdout.write(a.json ? JSON.stringify(out) + '\n' : `FID: ${r.fid}\n`);
    },
  };
}
