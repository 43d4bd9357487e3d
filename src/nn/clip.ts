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
import { causalMask, mergeHeads, scaledDotProductAttention, splitHeads, torchLinear } from './attention.js';
import { layerNorm } from './layers.js';
import { Params } from './params.js';
import { loadVerified } from './torch_weights.js';

export type Activation = 'quick_gelu' | 'gelu';

interface TowerConfig {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  act: Activation;
  eps: number;
}

export interface ClipTextConfig extends TowerConfig {
  vocabSize: number;
  maxPositions: number;
  eosTokenId: number;
}

export interface ClipVisionConfig extends TowerConfig {
  imageSize: number;
  patchSize: number;
  channels: number;
}

export interface ClipConfig {
  /** CLIPModel has both towers and projections; CLIPTextModel (SD's text_encoder) the text tower only. */
  kind: 'CLIPModel' | 'CLIPTextModel';
  text: ClipTextConfig;
  vision: ClipVisionConfig | null;
  projectionDim: number | null;
}

function activation(x: tf.Tensor, act: Activation): tf.Tensor {
  if (act === 'quick_gelu') return tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
}

function encoderLayer(p: Params, n: string, x: tf.Tensor, c: TowerConfig, mask?: tf.Tensor): tf.Tensor {
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
  const mask = causalMask(t);
  for (let i = 0; i < c.layers; i++) x = encoderLayer(p, `text_model.encoder.layers.${i}`, x, c, mask);
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

// ---------------------------------------------------------------- config.json

type Json = Record<string, unknown>;

function field<T extends 'number' | 'string'>(
  file: string,
  obj: Json,
  key: string,
  type: T,
  fallback?: T extends 'number' ? number : string,
): T extends 'number' ? number : string {
  const v = obj[key] ?? fallback;
  if (typeof v !== type || (type === 'number' && !Number.isFinite(v)))
    throw new UserError(`${file}: ${key} must be a ${type} (got ${JSON.stringify(obj[key])})`);
  return v as T extends 'number' ? number : string;
}

/** The keys of a text or vision tower config this port reads. */
const TOWER_KEYS = [
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'hidden_act',
  'layer_norm_eps',
];
const TEXT_KEYS = [...TOWER_KEYS, 'vocab_size', 'max_position_embeddings', 'eos_token_id'];
const VISION_KEYS = [...TOWER_KEYS, 'image_size', 'patch_size', 'num_channels'];

/**
 * Keys of a transformers CLIP config that cannot change the features this port computes, by
 * group. Everything else a config holds is refused in one line (pruned_heads too, unless empty).
 */
const CLIP_IRRELEVANT: Record<string, string[]> = {
  // Training only: dropout is the identity at inference, the initialisers are overwritten by the weights.
  training: [
    'attention_dropout',
    'dropout',
    'initializer_range',
    'initializer_factor',
    'logit_scale_init_value',
    'gradient_checkpointing',
  ],
  // The projection width of a tower's own *WithProjection class (CLIPModel reads the top-level one).
  projection: ['projection_dim'],
  // Token ids the tokenizer uses; the text tower reads only eos_token_id (pooling).
  tokens: ['bos_token_id', 'pad_token_id', 'sep_token_id', 'decoder_start_token_id'],
  // Bookkeeping, storage dtype (computation is float32), kernel choice and output format.
  bookkeeping: [
    'architectures',
    'model_type',
    'transformers_version',
    'torch_dtype',
    'dtype',
    'use_bfloat16',
    'tf_legacy_loss',
    'torchscript',
    'return_dict',
    'output_attentions',
    'output_hidden_states',
    'use_return_dict',
    '_attn_implementation',
    '_attn_implementation_autoset',
    '_commit_hash',
    'use_cache',
  ],
  // Heads, labels and tasks of other model classes; CLIP's towers never read them.
  otherClasses: [
    'is_encoder_decoder',
    'is_decoder',
    'add_cross_attention',
    'cross_attention_hidden_size',
    'tie_encoder_decoder',
    'tie_word_embeddings',
    'chunk_size_feed_forward',
    'finetuning_task',
    'id2label',
    'label2id',
    'num_labels',
    'problem_type',
    'tokenizer_class',
    'prefix',
    'task_specific_params',
  ],
  // Text generation settings (older transformers saved them in every config); CLIP does not generate.
  generation: [
    'max_length',
    'min_length',
    'do_sample',
    'early_stopping',
    'num_beams',
    'num_beam_groups',
    'diversity_penalty',
    'temperature',
    'top_k',
    'top_p',
    'typical_p',
    'repetition_penalty',
    'length_penalty',
    'no_repeat_ngram_size',
    'encoder_no_repeat_ngram_size',
    'bad_words_ids',
    'num_return_sequences',
    'output_scores',
    'return_dict_in_generate',
    'forced_bos_token_id',
    'forced_eos_token_id',
    'remove_invalid_values',
    'exponential_decay_length_penalty',
    'suppress_tokens',
    'begin_suppress_tokens',
  ],
};
const IRRELEVANT_KEYS = Object.values(CLIP_IRRELEVANT).flat();

/** Every key of `o` is one the parser reads, irrelevant (above), or bookkeeping ("_…"); pruned heads change the model. */
function refuseUnknownClipKeys(file: string, o: Json, where: string, read: string[]): void {
  const known = new Set([...read, ...IRRELEVANT_KEYS]);
  const unknown = Object.keys(o).find((k) => !known.has(k) && !k.startsWith('_'));
  if (unknown !== undefined)
    throw new UserError(
      `${file}: ${where}${unknown}: not a setting this loader implements (${JSON.stringify(o[unknown])?.slice(0, 60)}); refused rather than ignored`,
    );
  const pruned = o.pruned_heads;
  if (pruned !== undefined && (typeof pruned !== 'object' || pruned === null || Object.keys(pruned).length > 0))
    throw new UserError(
      `${file}: ${where}pruned_heads ${JSON.stringify(pruned)}: pruned attention heads are not supported`,
    );
}

/**
 * Older CLIPModel configs repeat a tower's settings in text_config_dict / vision_config_dict,
 * which transformers lets override text_config / vision_config: accepted where they agree.
 */
function checkConfigDict(file: string, o: Json, key: string, tower: Json): void {
  const d = o[key];
  if (d === undefined || d === null) return;
  if (typeof d !== 'object' || Array.isArray(d)) throw new UserError(`${file}: ${key} must be an object or null`);
  for (const [k, v] of Object.entries(d as Json)) {
    if (k in tower && JSON.stringify(tower[k]) !== JSON.stringify(v))
      throw new UserError(
        `${file}: ${key}.${k} ${JSON.stringify(v)} differs from ${key.replace('_dict', '')}.${k} ${JSON.stringify(tower[k])}: ambiguous, not supported`,
      );
  }
}

function tower(file: string, o: Json, where: string): TowerConfig {
  const num = (k: string, d?: number) => field(file, o, k, 'number', d);
  const act = field(file, o, 'hidden_act', 'string', 'quick_gelu');
  if (act !== 'quick_gelu' && act !== 'gelu')
    throw new UserError(`${file}: ${where}hidden_act '${act}' is not supported (quick_gelu, gelu)`);
  const c = {
    hidden: num('hidden_size'),
    intermediate: num('intermediate_size'),
    layers: num('num_hidden_layers'),
    heads: num('num_attention_heads'),
    act: act as Activation,
    eps: num('layer_norm_eps', 1e-5),
  };
  if (c.hidden % c.heads !== 0)
    throw new UserError(`${file}: ${where}hidden_size ${c.hidden} is not a multiple of num_attention_heads ${c.heads}`);
  return c;
}

function textConfig(file: string, o: Json, where: string): ClipTextConfig {
  refuseUnknownClipKeys(file, o, where, [...TEXT_KEYS, 'pruned_heads']);
  return {
    ...tower(file, o, where),
    vocabSize: field(file, o, 'vocab_size', 'number', 49408),
    maxPositions: field(file, o, 'max_position_embeddings', 'number', 77),
    eosTokenId: field(file, o, 'eos_token_id', 'number', 2),
  };
}

function visionConfig(file: string, o: Json): ClipVisionConfig {
  refuseUnknownClipKeys(file, o, 'vision_config.', [...VISION_KEYS, 'pruned_heads']);
  const c = {
    ...tower(file, o, 'vision_config.'),
    imageSize: field(file, o, 'image_size', 'number', 224),
    patchSize: field(file, o, 'patch_size', 'number', 32),
    channels: field(file, o, 'num_channels', 'number', 3),
  };
  if (c.imageSize % c.patchSize !== 0)
    throw new UserError(
      `${file}: vision_config.image_size ${c.imageSize} is not a multiple of patch_size ${c.patchSize}`,
    );
  return c;
}

/** A transformers CLIP config.json: CLIPModel (text_config + vision_config) or CLIPTextModel. */
export function parseClipConfig(file: string, json: unknown): ClipConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new UserError(`${file}: not a JSON object`);
  const o = json as Json;
  const arch = Array.isArray(o.architectures) ? String(o.architectures[0]) : String(o.model_type ?? '');
  if (arch === 'CLIPTextModel' || arch === 'clip_text_model') {
    return { kind: 'CLIPTextModel', text: textConfig(file, o, ''), vision: null, projectionDim: null };
  }
  if (arch !== 'CLIPModel' && arch !== 'clip')
    throw new UserError(`${file}: architectures '${arch}' is not a CLIP model (CLIPModel, CLIPTextModel)`);
  const sub = (k: string): Json => {
    const v = o[k];
    if (typeof v !== 'object' || v === null) throw new UserError(`${file}: ${k} is missing`);
    return v as Json;
  };
  refuseUnknownClipKeys(file, o, '', [
    'text_config',
    'vision_config',
    'text_config_dict',
    'vision_config_dict',
    'pruned_heads',
  ]);
  const config: ClipConfig = {
    kind: 'CLIPModel',
    text: textConfig(file, sub('text_config'), 'text_config.'),
    vision: visionConfig(file, sub('vision_config')),
    projectionDim: field(file, o, 'projection_dim', 'number', 512),
  };
  checkConfigDict(file, o, 'text_config_dict', sub('text_config'));
  checkConfigDict(file, o, 'vision_config_dict', sub('vision_config'));
  return config;
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
