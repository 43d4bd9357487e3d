/**
 * A transformers CLIP config.json (CLIPModel or CLIPTextModel) read strictly: the settings this
 * port implements, the few that cannot change its features, and a one-line refusal for anything
 * else. Kept apart from the model (clip.ts) because parsing is plain validation, with no tensors.
 */
import { UserError } from '../errors.js';
export type Activation = 'quick_gelu' | 'gelu';

export interface TowerConfig {
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

/**
 * Every key of `o` is one the parser reads, irrelevant (above), or bookkeeping ("_…"); pruned heads
 * change the model.
 */
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
