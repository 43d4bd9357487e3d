/**
 * The zoo's picture for the README: test images, their VAE reconstructions, their G∘E inversions,
 * their DiffAE autoencodings, and text-to-image CFG samples for one prompt per column.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DdimScheduler, DDIM_SD } from '../../../src/diffusion/schedulers/ddim.js';
import {
  ddimInvertTensor,
  ddimSampleTensor,
  readAndDispose,
  repeatCondition,
  sampleCfg,
} from '../../../src/diffusion/pipelines/sample.js';
import { grid, writePng } from '../../../src/util/image_io.js';
import { Rng } from '../../../src/util/rng.js';
import { loadToyfacesWorld } from '../world_models.js';
import { worldPart } from '../../../src/world/types.js';
import { face, renderBatch } from '../world.js';

const GRID_PROMPTS = [
  'a face with red hair',
  'a face with white hair',
  'a face with blonde hair, smiling',
  'a face with a bald head',
  'a face with curly hair',
  'a face with long hair, wearing glasses',
  'a face with black hair, side view',
  'a face with angry',
];

export async function zooGrid(path: string, cols = 8): Promise<{ rows: string[] }> {
  const world = loadToyfacesWorld();
  const s = world.imageSize;
  const per = s * s * 3;
  const src = renderBatch(
    Array.from({ length: cols }, (_, i) => face('test', i)),
    s,
  );
  // Each picture row [cols, s, s, 3], clipped, kept on the device until the one read at the end.
  const pending: tf.Tensor[] = [];
  const push = (t: tf.Tensor) => void pending.push(tf.keep(tf.clipByValue(t, 0, 1)));
  try {
    const names = ['test images', 'VAE reconstruction', 'G(E(x)) inversion'];
    tf.tidy(() => {
      const x = tf.tensor4d(src, [cols, s, s, 3]);
      push(x);
      push(world.diffusion.decode(world.diffusion.encode(x)));
      const style = worldPart(world, 'style', 'the zoo grid');
      // toyfaces ships its encoder (only worlds of W+ codes have none).
      push(style.generate(style.encode!(x)));
    });
    const shape: [number, number, number, number] = [cols, ...world.diffusion.latentShape];
    const scheduler = new DdimScheduler({ ...DDIM_SD, steps: 50 });
    const ae = world.diffae;
    if (ae) {
      names.push('DiffAE autoencoding (DDIM 50 inversion + decoding)');
      const x = tf.tensor4d(src, [cols, s, s, 3]);
      const zsem = ae.encode(x);
      const eps = (z: tf.Tensor4D, t: number) => ae.eps(z, tf.fill([cols], t) as tf.Tensor1D, zsem);
      const z0 = world.diffusion.encode(x);
      const xT = ddimInvertTensor(eps, scheduler, z0, shape);
      const back = ddimSampleTensor(eps, scheduler, xT, shape);
      tf.tidy(() => push(world.diffusion.decode(back)));
      tf.dispose([x, zsem, z0, xT, back]);
    }
    names.push(`CFG samples (7.5, DDIM 50): ${GRID_PROMPTS.join(' | ')}`);
    const z = await sampleCfg({
      model: world.diffusion.eps,
      scheduler,
      cond: await world.diffusion.textCondition(GRID_PROMPTS.slice(0, cols)),
      uncond: repeatCondition(await world.diffusion.textCondition(['']), cols),
      guidance: 7.5,
      shape: world.diffusion.latentShape,
      rng: new Rng(0),
    });
    tf.tidy(() => push(world.diffusion.decode(tf.tensor4d(z, shape))));
    const all = tf.concat(pending);
    tf.dispose(pending.splice(0));
    const v = await readAndDispose(all);
    const rows: Float32Array[] = [];
    for (let i = 0; i < v.length / per; i++) rows.push(v.slice(i * per, (i + 1) * per));
    const g = grid(rows, s, cols);
    writePng(path, g.data, g.width, g.height);
    return { rows: names };
  } finally {
    tf.dispose(pending);
    world.dispose();
  }
}
