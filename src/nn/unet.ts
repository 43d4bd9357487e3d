/**
 * A small U-Net of the latent-diffusion kind (GroupNorm, SiLU, strided-conv downsampling,
 * self-attention at the lowest resolution, nearest upsampling with skip concatenations).
 * bench/unet_torch.py defines the same network in PyTorch for the speed comparison.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from './params.js';
import { attention, conv2d, groupNormSilu, resBlock, upsample2x } from './layers.js';

export interface UNetConfig {
  channels: number[]; // per level, e.g. [32, 64, 128]
  groups: number;
  outChannels: number;
}

export function unet(p: Params, x: tf.Tensor4D, cfg: UNetConfig): tf.Tensor4D {
  const { channels: ch, groups } = cfg;
  let h = conv2d(p, 'conv_in', x, ch[0]);
  const skips: tf.Tensor4D[] = [];
  for (let i = 0; i < ch.length; i++) {
    h = resBlock(p, `down${i}.res`, h, groups);
    if (i < ch.length - 1) {
      skips.push(h);
      h = conv2d(p, `down${i}.down`, h, ch[i + 1], 3, 2);
    }
  }
  h = attention(p, 'mid.attn', h, groups);
  h = resBlock(p, 'mid.res', h, groups);
  for (let i = ch.length - 2; i >= 0; i--) {
    h = conv2d(p, `up${i}.up`, upsample2x(h), ch[i]);
    h = conv2d(p, `up${i}.merge`, tf.concat([h, skips[i]], 3) as tf.Tensor4D, ch[i]);
    h = resBlock(p, `up${i}.res`, h, groups);
  }
  return conv2d(p, 'conv_out', groupNormSilu(p, 'norm_out', h, groups), cfg.outChannels);
}
