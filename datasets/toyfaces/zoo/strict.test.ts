/**
 * Strict loading of zoo weights: every shipped file holds exactly the tensors its model reads; a
 * file with a tensor missing, an extra one, another model's tensors or a wrong shape is refused
 * with one line naming the file and the keys, never loaded as a partly random model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backendFromEnv, initBackend } from '../../../src/backend/index.js';
import { ParamsError } from '../../../src/nn/params.js';
import { f32, parseSafetensors, serializeSafetensors, type StTensor } from '../../../src/util/safetensors.js';
import { sha256 } from '../../../src/util/hash.js';
import { tmp } from '../../../test/helpers.js';
import { ZOO_DIR, loadParams, loadParamsFile, readWeights, zooModels } from './store.js';

await initBackend(backendFromEnv());

test('every shipped model loads strictly: its file holds exactly the tensors the model reads', () => {
  assert.ok(zooModels().length >= 7);
  for (const name of zooModels()) {
    const { params } = loadParams(name);
    assert.equal(params.vars.size, readWeights(name).tensors.size, name);
    assert.throws(() => params.get('no.such.tensor', [1], { kind: 'zeros' }), ParamsError, `${name}: no random init`);
    params.dispose();
  }
});

/** A zoo folder holding VAE weights edited by `edit` (card hash updated), as a new checkpoint would be. */
function zooWith(edit: (t: Map<string, StTensor>) => void): string {
  const zoo = tmp('sdd-strict-');
  mkdirSync(join(zoo, 'vae'));
  const tensors = new Map(parseSafetensors(readFileSync(join(ZOO_DIR, 'vae', 'weights.safetensors'))).tensors);
  edit(tensors);
  const bytes = serializeSafetensors(tensors);
  writeFileSync(join(zoo, 'vae', 'weights.safetensors'), bytes);
  const card = JSON.parse(readFileSync(join(ZOO_DIR, 'vae', 'card.json'), 'utf-8'));
  card.weights = { ...card.weights, sha256: sha256(bytes), bytes: bytes.byteLength };
  writeFileSync(join(zoo, 'vae', 'card.json'), JSON.stringify(card));
  return zoo;
}

const refused = (fn: () => unknown, re: RegExp) =>
  assert.throws(
    fn,
    (e: unknown) => e instanceof ParamsError && !e.message.includes('\n') && re.test(e.message),
    String(re),
  );

test('a missing, extra or re-shaped tensor is named, with the file', () => {
  const gone = zooWith((t) => t.delete('dec.res0.conv1.weight'));
  refused(
    () => loadParams('vae', gone),
    /vae\/weights\.safetensors: does not fit the model \(68 model tensors, 67 in the file\): missing 1 \(dec\.res0\.conv1\.weight\)$/,
  );
  const extra = zooWith((t) => t.set('dec.extra', f32([1], new Float32Array(1))));
  refused(() => loadParams('vae', extra), /: unexpected 1 \(dec\.extra\)$/);
  const shape = zooWith((t) => t.set('enc.in.bias', f32([2, 16], new Float32Array(32))));
  refused(() => loadParams('vae', shape), /: wrong shape 1 \(enc\.in\.bias is \[2,16\], the model expects \[32\]\)$/);
  // Re-written unedited, the folder loads: the edits above, not the rewriting, are what is refused.
  loadParams(
    'vae',
    zooWith(() => {}),
  ).params.dispose();
});

test("another model's file given as the VAE is refused, listing both sides", () => {
  refused(
    () => loadParamsFile('vae', join(ZOO_DIR, 'ldm', 'weights.safetensors')),
    /ldm\/weights\.safetensors: does not fit the model \(68 model tensors, 152 in the file\): missing 68 \(enc\.in\.weight, .*\); unexpected 152 \(/,
  );
});
