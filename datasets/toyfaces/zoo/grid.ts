/**
 * The zoo's picture for the README: test images, their VAE reconstructions, their G∘E inversions,
 * their DiffAE autoencodings, and text-to-image CFG samples for one prompt per column.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DdimScheduler, DDIM_SD } from '../../../src/diffusion/schedulers/ddim.js';
import { ddimInvert, ddimSample, repeatCondition, sampleCfg } from '../../../src/diffusion/pipelines/sample.js';
import { grid, writePng } from '../../../src/util/image_io.js';
import { Rng } from '../../../src/util/rng.js';
import { loadToyfacesWorld } from '../world_models.js';
import { face, renderBatch } from '../world.js';

export const GRID_PROMPTS = ['a face with red hair', 'a face with white hair', 'a face with blonde hair, smiling', 'a face with a bald head', 'a face with curly hair', 'a face with long hair, wearing glasses', 'a face with black hair, side view', 'a face with angry'];

export function zooGrid(path: string, cols = 8): { rows: string[] } {
  const world = loadToyfacesWorld();
  const s = world.imageSize;
  const per = s * s * 3;
  const src = renderBatch(Array.from({ length: cols }, (_, i) => face('test', i)), s);
  const rows: Float32Array[] = [];
  const push = (t: tf.Tensor) => {
    const v = tf.clipByValue(t, 0, 1).dataSync() as Float32Array;
    for (let i = 0; i < cols; i++) rows.push(v.slice(i * per, (i + 1) * per));
  };
  const names = ['test images', 'VAE reconstruction', 'G(E(x)) inversion'];
  tf.tidy(() => {
    const x = tf.tensor4d(src, [cols, s, s, 3]);
    push(x);
    push(world.diffusion.decode(world.diffusion.encode(x)));
    push(world.style.generate(world.style.encode(x)));
  });
  const shape: [number, number, number, number] = [cols, ...world.diffusion.latentShape];
  const scheduler = new DdimScheduler({ ...DDIM_SD, steps: 50 });
  const ae = world.diffae;
  if (ae) {
    names.push('DiffAE autoencoding (DDIM 50 inversion + decoding)');
    const x = tf.tensor4d(src, [cols, s, s, 3]);
    const zsem = ae.encode(x);
    const eps = (z: tf.Tensor4D, t: number) => ae.eps(z, tf.fill([cols], t) as tf.Tensor1D, zsem);
    const xT = ddimInvert(eps, scheduler, world.diffusion.encode(x).dataSync() as Float32Array, shape);
    tf.tidy(() => push(world.diffusion.decode(tf.tensor4d(ddimSample(eps, scheduler, xT, shape), shape))));
    tf.dispose([x, zsem]);
  }
  names.push(`CFG samples (7.5, DDIM 50): ${GRID_PROMPTS.join(' | ')}`);
  const z = sampleCfg({
    model: world.diffusion.eps,
    scheduler,
    cond: world.diffusion.textCondition(GRID_PROMPTS.slice(0, cols)),
    uncond: repeatCondition(world.diffusion.textCondition(['']), cols),
    guidance: 7.5,
    shape: world.diffusion.latentShape,
    rng: new Rng(0),
  });
  tf.tidy(() => push(world.diffusion.decode(tf.tensor4d(z, shape))));
  const g = grid(rows, s, cols);
  writePng(path, g.data, g.width, g.height);
  world.dispose();
  return { rows: names };
}
