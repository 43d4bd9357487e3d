/**
 * CLIP's text and vision transformers as Hugging Face transformers lays them out (CLIPModel,
 * CLIPTextModel: `config.json` + `model.safetensors`), written from the CLIP paper and the reference
 * code's behaviour: pre-LayerNorm residual blocks, quick-GELU (x·σ(1.702x)) or GELU, a causal mask
 * for text, the pooled text feature at the first end-of-text token, the image feature at the class
 * token. SD v1's text encoder is CLIP ViT-L/14's text tower (a CLIPTextModel folder); CLIP
 * similarity uses both towers and their projections.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors.js';
import { mergeHeads, scaledDotProductAttention, splitHeads, torchLinear, type AttentionMask } from './attention.js';
import { layerNorm } from './layers.js';
import { Params } from './params.js';
import { loadVerified } from './torch_weights.js';
import {
  parseClipConfig,
  type Activation,
  type ClipConfig,
  type ClipTextConfig,
  type TowerConfig,
} from './clip_config.js';

// Callers read a folder's config through this module, beside the model it configures.
export { parseClipConfig };

function activation(x: tf.Tensor, act: Activation): tf.Tensor {
  if (act === 'quick_gelu') return tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
}

function encoderLayer(p: Params, n: string, x: tf.Tensor, c: TowerConfig, mask?: AttentionMask): tf.Tensor {
  const h = layerNorm(p, `${n}.layer_norm1`, x, c.eps);
  const [q, k, v] = ['q_proj', 'k_proj', 'v_proj'].map((m) =>
    splitHeads(torchLinear(p, `${n}.self_attn.${m}`, h, c.hidden), c.heads),
  );
  x = tf.add(
    x,
    torchLinear(p, `${n}.self_attn.out_proj`, mergeHeads(scaledDotProductAttention(q, k, v, mask)), c.hidden),
  );
  const m = activation(
    torchLinear(p, `${n}.mlp.fc1`, layerNorm(p, `${n}.layer_norm2`, x, c.eps), c.intermediate),
    c.act,
  );
  return tf.add(x, torchLinear(p, `${n}.mlp.fc2`, m, c.hidden));
}

/** last_hidden_state [B, T, D] of token ids [B, T] (int32); SD v1 conditions on it (T = 77). */
export function clipTextHidden(p: Params, c: ClipTextConfig, ids: tf.Tensor2D): tf.Tensor3D {
  const [b, t] = ids.shape;
  if (t > c.maxPositions) throw new UserError(`CLIP text: ${t} tokens, the model takes at most ${c.maxPositions}`);
  const tok = p.get('text_model.embeddings.token_embedding.weight', [c.vocabSize, c.hidden], {
    kind: 'normal',
    std: 0.02,
  });
  const pos = p.get('text_model.embeddings.position_embedding.weight', [c.maxPositions, c.hidden], {
    kind: 'normal',
    std: 0.01,
  });
  let x: tf.Tensor = tf.add(
    tf.reshape(tf.gather(tok, tf.reshape(ids, [-1])), [b, t, c.hidden]),
    tf.slice(pos, [0, 0], [t, c.hidden]),
  );
  // 'causal', not a [T, T] tensor: the fused kernel (webgpu) skips the masked keys.
  for (let i = 0; i < c.layers; i++) x = encoderLayer(p, `text_model.encoder.layers.${i}`, x, c, 'causal');
  return layerNorm(p, 'text_model.final_layer_norm', x, c.eps) as tf.Tensor3D;
}

/**
 * The row of each sequence whose feature is pooled: the first end-of-text token, as transformers
 * does; with a legacy config (eos_token_id 2) the highest id, as the original code does.
 */
export function eosPositions(c: ClipTextConfig, ids: Int32Array, t: number): number[] {
  const rows: number[] = [];
  for (let r = 0; r * t < ids.length; r++) {
    const row = ids.subarray(r * t, (r + 1) * t);
    let at = -1;
    if (c.eosTokenId === 2) {
      for (let j = 0; j < t; j++) if (at < 0 || row[j] > row[at]) at = j;
    } else at = row.indexOf(c.eosTokenId);
    if (at < 0) throw new UserError(`CLIP text: sequence ${r} has no end-of-text token (${c.eosTokenId})`);
    rows.push(at);
  }
  return rows;
}

/** Projected text features [B, projection_dim] (CLIPModel.get_text_features). */
export function clipTextEmbeds(p: Params, c: ClipConfig, ids: tf.Tensor2D, eos: number[]): tf.Tensor2D {
  if (c.projectionDim === null) throw new Error('clipTextEmbeds: a CLIPTextModel has no projection');
  const [b, t] = ids.shape;
  const hidden = tf.reshape(clipTextHidden(p, c.text, ids), [b * t, c.text.hidden]);
  const pooled = tf.gather(
    hidden,
    eos.map((j, r) => r * t + j),
  );
  return torchLinear(p, 'text_projection', pooled, c.projectionDim, false) as tf.Tensor2D;
}

/** Projected image features [B, projection_dim] of pixel_values NHWC [B, S, S, C], already normalised. */
export function clipImageEmbeds(p: Params, c: ClipConfig, pixels: tf.Tensor4D): tf.Tensor2D {
  const v = c.vision;
  if (!v || c.projectionDim === null) throw new Error('clipImageEmbeds: the checkpoint has no vision tower');
  const b = pixels.shape[0];
  const grid = v.imageSize / v.patchSize;
  const w = p.get('vision_model.embeddings.patch_embedding.weight', [v.patchSize, v.patchSize, v.channels, v.hidden], {
    kind: 'normal',
    std: 0.02,
  });
  const patches = tf.reshape(tf.conv2d(pixels, w as tf.Tensor4D, v.patchSize, 'valid'), [b, grid * grid, v.hidden]);
  const cls = tf.broadcastTo(
    tf.reshape(p.get('vision_model.embeddings.class_embedding', [v.hidden], { kind: 'normal', std: 0.02 }), [
      1,
      1,
      v.hidden,
    ]),
    [b, 1, v.hidden],
  );
  const pos = p.get('vision_model.embeddings.position_embedding.weight', [grid * grid + 1, v.hidden], {
    kind: 'normal',
    std: 0.02,
  });
  let x: tf.Tensor = layerNorm(p, 'vision_model.pre_layrnorm', tf.add(tf.concat([cls, patches], 1), pos), v.eps);
  for (let i = 0; i < v.layers; i++) x = encoderLayer(p, `vision_model.encoder.layers.${i}`, x, v);
  const pooled = layerNorm(
    p,
    'vision_model.post_layernorm',
    tf.reshape(tf.slice(x, [0, 0, 0], [b, 1, v.hidden]), [b, v.hidden]),
    v.eps,
  );
  return torchLinear(p, 'visual_projection', pooled, c.projectionDim, false) as tf.Tensor2D;
}

/** exp(logit_scale): CLIPModel's temperature for logits. */
export function clipLogitScale(p: Params): tf.Scalar {
  return tf.exp(tf.reshape(p.get('logit_scale', [], { kind: 'zeros' }), [])) as tf.Scalar;
}

export interface Clip {
  config: ClipConfig;
  params: Params;
}

/** The weights file of a transformers folder: model.safetensors, or its sharded index. */
export function weightsIn(dir: string): string {
  for (const f of ['model.safetensors', 'model.safetensors.index.json'])
    if (existsSync(join(dir, f))) return join(dir, f);
  throw new UserError(
    `${dir}: no model.safetensors (a PyTorch pytorch_model.bin must be converted to safetensors first)`,
  );
}

/**
 * transformers 5 saves a CLIPTextModel's tensors without the `text_model.` prefix (embeddings.…,
 * encoder.…, final_layer_norm.…); they are the same tensors. Only those three parts are renamed,
 * so any other stray tensor keeps its own name in the error; a file with both spellings of one
 * tensor is refused by the loader ("… and … are both …").
 */
function textModelName(name: string): string {
  return /^(embeddings|encoder|final_layer_norm)\./.test(name) ? `text_model.${name}` : name;
}

/**
 * A CLIP folder loaded strictly: every tensor the model uses present in its shape, none left over
 * (the position_ids buffers of older checkpoints aside).
 */
export function loadClip(dir: string): Clip {
  const cfgFile = join(dir, 'config.json');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(cfgFile, 'utf-8'));
  } catch (e) {
    throw new UserError(`${cfgFile}: ${(e as Error).message.split('\n')[0]}`);
  }
  const config = parseClipConfig(cfgFile, json);
  const rename = config.kind === 'CLIPTextModel' ? textModelName : undefined;
  return {
    config,
    params: loadVerified(weightsIn(dir), (p) => touchClip(p, config), {
      ignore: (n) => n.endsWith('embeddings.position_ids'),
      rename,
    }),
  };
}

/** Both towers (or the text tower) on a two-token text and a blank image: reads every parameter once. */
function touchClip(p: Params, config: ClipConfig): tf.Tensor {
  const ids = tf.tensor2d([[0, config.text.eosTokenId === 2 ? 1 : config.text.eosTokenId]], [1, 2], 'int32');
  if (config.kind === 'CLIPTextModel') return clipTextHidden(p, config.text, ids);
  const v = config.vision!;
  clipImageEmbeds(p, config, tf.zeros([1, v.imageSize, v.imageSize, v.channels]));
  clipLogitScale(p);
  return clipTextEmbeds(p, config, ids, [1]);
}

/** The architecture of a config with seeded random weights (no file). */
export function randomClip(config: ClipConfig, seed: number): Clip {
  return { config, params: Params.created(seed, (p) => touchClip(p, config)) };
}
