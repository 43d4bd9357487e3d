/**
 * The outside files of `world: paper` (`sdd checkpoints list --world paper`): the real world's
 * Stable Diffusion, CLIP, Inception and ArcFace (required here: it is SDD's ID loss), StyleGAN2-FFHQ
 * and, optionally, W+ code files (e4e inversions; without them codes are sampled through the mapping
 * network with truncation ψ).
 */
import type { FileRole } from '../../src/world/files.js';
import { loadStyleGan2, nLatent } from '../../src/nn/stylegan2.js';
import { openWeights } from '../../src/util/safetensors_lazy.js';
import { UserError } from '../../src/errors.js';
import { REAL_ROLES } from '../real/roles.js';

/**
 * A W+ codes file's tensor `wplus` [N, levels, dim] (18 × 512 for FFHQ 1024²); anything else is
 * one line naming the file.
 */
export function codesShape(path: string, want?: [number, number]): number[] {
  const src = openWeights(path);
  try {
    if (!src.names().includes('wplus'))
      throw new UserError(`${path}: no tensor 'wplus' (convert StyleCLIP's .pt with tools/convert_latents.py)`);
    const { shape } = src.info('wplus');
    if (shape.length !== 3) throw new UserError(`${path}: wplus is [${shape}], W+ codes are [N, levels, dim]`);
    if (want && (shape[1] !== want[0] || shape[2] !== want[1]))
      throw new UserError(`${path}: wplus is [${shape}], the generator takes [N, ${want}]`);
    return shape;
  } finally {
    src.close();
  }
}

const codesRole = (what: string, name: string, file: string): FileRole => ({
  kind: 'file',
  describe: `W+ codes [N, 18, 512] of the ${what} images (e4e inversions of CelebA-HQ) as safetensors {wplus}`,
  source: `StyleCLIP's ${file} (linked from its README, e4e inversions), then python3 tools/convert_latents.py ${file} ${name}`,
  defaultName: name,
  optional: `${what} codes are sampled through the mapping network (truncation ψ 0.7, seeded)`,
  verify: (path) => `${codesShape(path)[0]} codes`,
});

export const PAPER_ROLES: Record<string, FileRole> = {
  sd: REAL_ROLES.sd,
  clip: REAL_ROLES.clip,
  inception: REAL_ROLES.inception,
  stylegan2: {
    kind: 'file',
    describe:
      "StyleGAN2-FFHQ config-f 1024² (rosinality's g_ema, as StyleCLIP and the SDD code load it) as safetensors: the generator SDD's mapper edits",
    source:
      "stylegan2-ffhq-config-f.pt (rosinality/stylegan2-pytorch README, converted from NVIDIA's), then python3 tools/convert_stylegan2.py stylegan2-ffhq-config-f.pt stylegan2-ffhq-config-f.safetensors",
    defaultName: 'stylegan2-ffhq-config-f.safetensors',
    verify(path) {
      const g = loadStyleGan2(path);
      const text = `${g.config.size}², W+ ${nLatent(g.config)} × ${g.config.styleDim}, ${(g.params.count() / 1e6).toFixed(1)} M parameters, ${g.latentAvg ? 'with' : 'without'} latent_avg`;
      g.dispose();
      return text;
    },
  },
  arcface: {
    ...REAL_ROLES.arcface,
    optional: undefined,
    describe: `${REAL_ROLES.arcface.describe}, and SDD's identity loss`,
  },
  codes: codesRole('test', 'test_faces.safetensors', 'test_faces.pt'),
  train_codes: codesRole('training', 'train_faces.safetensors', 'train_faces.pt'),
};
