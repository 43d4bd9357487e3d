/** The outside files the real world loads, by role (`sdd checkpoints list` prints these). */
import { readdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import { UserError } from '../../src/errors.js';
import type { FileRole } from '../../src/world/files.js';
import { loadStableDiffusion } from '../../src/diffusion/models/sd_folder.js';
import { loadClip } from '../../src/nn/clip.js';
import { INCEPTION_HELP, loadInception } from '../../src/metrics/inception.js';
import { loadIrSe50 } from '../../src/nn/arcface.js';
import type { Params } from '../../src/nn/params.js';

const millions = (p: Params) => `${(p.count() / 1e6).toFixed(1)} M`;

/** A loader's parameter count, the store freed after. */
const parameterCount = (load: (path: string) => Params) => (path: string) => {
  const p = load(path);
  try {
    return `${millions(p)} parameters`;
  } finally {
    p.dispose();
  }
};

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);

/** The images role's files, in name order; none is an error. */
export function imageFiles(dir: string): string[] {
  const files = readdirSync(dir)
    .filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()))
    .sort();
  if (files.length === 0) throw new UserError(`${dir}: no PNG or JPEG images (the real world's images role)`);
  return files.map((f) => join(dir, f));
}

export const REAL_ROLES: Record<string, FileRole> = {
  sd: {
    kind: 'dir',
    describe:
      'Stable Diffusion v1.x in the diffusers layout (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/; safetensors weights): the ε-model, VAE and text encoder',
    source: 'Hugging Face CompVis/stable-diffusion-v1-4 (or runwayml/stable-diffusion-v1-5); its *.safetensors files',
    defaultName: 'stable-diffusion-v1-4',
    verify(path) {
      const sd = loadStableDiffusion(path);
      const text = `UNet ${millions(sd.unet.params)}, VAE ${millions(sd.vae.params)}, text encoder ${millions(sd.textEncoder.params)} parameters; ${sd.unet.config.sampleSize * 2 ** (sd.vae.config.blockOutChannels.length - 1)}² images, ${sd.scheduler.prediction}`;
      sd.dispose();
      return text;
    },
  },
  clip: {
    kind: 'dir',
    describe:
      'CLIP in the transformers layout (config.json, model.safetensors, vocab.json, merges.txt): CLIP similarity',
    source:
      "Hugging Face openai/clip-vit-base-patch32 (ViT-B/32, the paper's metric model); openai/clip-vit-large-patch14 also loads",
    defaultName: 'clip-vit-base-patch32',
    verify(path) {
      const c = loadClip(path);
      const v = c.config.vision;
      const text = `${c.config.kind}, ${millions(c.params)} parameters${v ? `, ViT ${v.imageSize}²/${v.patchSize}` : ''}`;
      c.params.dispose();
      return text;
    },
  },
  inception: {
    kind: 'file',
    describe: "pytorch-fid's FID Inception-v3 as safetensors: FID and KID features",
    source: INCEPTION_HELP,
    defaultName: 'pt_inception-2015-12-05.safetensors',
    verify: parameterCount(loadInception),
  },
  arcface: {
    kind: 'file',
    describe: "ArcFace IR-SE50 (StyleCLIP's and e4e's model_ir_se50.pth) as safetensors: identity similarity of edits",
    source:
      'model_ir_se50.pth (linked from the StyleCLIP and e4e READMEs), then python3 tools/convert_ir_se50.py model_ir_se50.pth ir_se50.safetensors',
    defaultName: 'ir_se50.safetensors',
    optional: 'identity similarity is left empty',
    verify: parameterCount(loadIrSe50),
  },
  images: {
    kind: 'dir',
    describe:
      'the test images (PNG or JPEG; centre-cropped to a square and resized to the model size), edited in file-name order',
    source: 'your evaluation set, e.g. the CelebA-HQ test split',
    defaultName: 'images',
    verify: (path) => `${imageFiles(path).length} images`,
  },
};
