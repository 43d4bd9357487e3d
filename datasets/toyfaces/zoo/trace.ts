/**
 * One forward of each zoo model on a tiny input, touching every tensor the model's code reads,
 * training heads included (what its weights file must hold, no more, no less). Loading runs it
 * on the loaded store (Params.verify) so that a file with missing, unexpected or mis-shaped
 * tensors is refused by name instead of running as a partly random model.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../../src/nn/params.js';
import { linear } from '../../../src/nn/layers.js';
import { condUnet } from '../../../src/diffusion/models/cond_unet.js';
import { EDITABLE_NAMES, valuesOf } from '../attributes.js';
import { MAX_TOKENS } from '../tokenizer.js';
import { clipImageEmbed, clipTextEmbed, logitScale } from '../models/clip.js';
import { diffaeEps, semanticEncode } from '../models/diffae.js';
import { featnetLoss, HEADS } from '../models/featnet.js';
import { idnetLoss } from '../models/idnet.js';
import { encode, generate } from '../models/stylegen.js';
import { vaeDecode, vaeEncode } from '../models/vae.js';
import { configOf } from '../models/configs.js';

/** The image size every zoo model takes (cards: "32x32x3 in [0,1]"). */
const SIZE = 32;
const image = () => tf.fill([1, SIZE, SIZE, 3], 0.5) as tf.Tensor4D;

type Trace = (p: Params, architecture: Record<string, unknown>) => void;

const TRACES: Record<string, Trace> = {
  featnet: (p, a) => void featnetLoss(p, image(), tf.zeros([1, HEADS.length]), configOf('featnet', a)),
  idnet: (p, a) => void idnetLoss(p, image(), tf.zeros([1, 1]), configOf('idnet', a)),
  clip(p, a) {
    const cfg = configOf('clip', a);
    clipImageEmbed(p, image(), cfg);
    clipTextEmbed(p, tf.ones([1, MAX_TOKENS]), cfg);
    logitScale(p);
  },
  // Encoder and decoder only: the perceptual term of the loss runs another (frozen) model.
  vae(p, a) {
    const cfg = configOf('vae', a);
    vaeDecode(p, vaeEncode(p, image(), cfg).mean, cfg);
  },
  stylegen(p, a) {
    const cfg = configOf('stylegen', a);
    generate(p, encode(p, image(), cfg).wplus, cfg);
  },
  ldm(p, a) {
    const cfg = configOf('ldm', a);
    const zt = tf.zeros([1, cfg.latentSize, cfg.latentSize, cfg.latentChannels]) as tf.Tensor4D;
    condUnet(
      p,
      zt,
      tf.tensor1d([500]),
      tf.zeros([1, cfg.contextTokens, cfg.contextDim]) as tf.Tensor3D,
      tf.ones([1, cfg.contextTokens]) as tf.Tensor2D,
      cfg,
    );
  },
  // The U-Net pair, the z_sem statistics and one softmax-regression head per editable attribute.
  diffae(p, a) {
    const cfg = configOf('diffae', a);
    const zsem = semanticEncode(p, image(), cfg);
    diffaeEps(
      p,
      tf.zeros([1, cfg.latentSize, cfg.latentSize, cfg.latentChannels]) as tf.Tensor4D,
      tf.tensor1d([500]),
      zsem,
      cfg,
    );
    const zn = tf.div(
      tf.sub(zsem, p.get('sem.mean', [cfg.semantic], { kind: 'zeros' })),
      p.get('sem.std', [cfg.semantic], { kind: 'ones' }),
    ) as tf.Tensor2D;
    for (const name of EDITABLE_NAMES) linear(p, `cls.${name}`, zn, valuesOf(name).length);
  },
};

/** Verifies a loaded store against model `name`'s code; throws a one-line ParamsError on a mismatch. */
export function verifyModel(name: string, p: Params, architecture: Record<string, unknown>): void {
  const trace = TRACES[name];
  if (trace) p.verify((q) => trace(q, architecture));
}
