/**
 * make bench-attention: the fused attention kernel (src/backend/kernels/attention.ts) against the
 * tfjs-ops path (matMul → softmax → matMul) on webgpu, at Stable Diffusion v1's attention shapes
 * (8 heads × batch 2 for CFG: self-attention over 64², 32², 16², 8² latents with head sizes
 * 40/80/160/160, cross-attention to 77 text tokens), beside PyTorch's scaled_dot_product_attention
 * and explicit matmul/softmax on the same GPU (bench/attention_torch.py, fp32, TF32 off); then one
 * SD v1 UNet CFG step at 64² (batch 2, seeded random weights at full size: timing does not depend
 * on the values) with each attention path. The issue's target: the UNet CFG step within 3× of
 * PyTorch fp32, 44 ms on an H200.
 *
 *   node --import tsx bench/attention.ts [--smoke] [--allow-software]
 *
 * Writes bench/results/attention.json (attention-smoke.json for --smoke or a software adapter).
 */
import { join } from 'node:path';
import { execa } from 'execa';
import * as tf from '@tensorflow/tfjs-core';
import { shutdownBackend } from '../src/backend/index.js';
import { FUSED_ATTENTION } from '../src/backend/kernels/attention.js';
import { attentionOps, scaledDotProductAttention } from '../src/nn/attention.js';
import { Params } from '../src/nn/params.js';
import { unetForward, parseUNetConfig } from '../src/diffusion/models/sd_unet.js';
import { ConfigReader } from '../src/diffusion/models/diffusers_config.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { pythonWith } from '../src/util/python.js';
import { med, timeIt, webgpuForBench, writeResult } from './common.js';

const args = process.argv.slice(2);
const allowSoftware = args.includes('--allow-software') || process.env.SDD_BENCH_ALLOW_SOFTWARE === '1';

/** [B·H, Tq, Tk, D] of SD v1's attention layers at 512² with CFG (batch 2 × 8 heads). */
const FULL_SHAPES: Array<[number, number, number, number]> = [
  [16, 4096, 4096, 40],
  [16, 4096, 77, 40],
  [16, 1024, 1024, 80],
  [16, 256, 256, 160],
  [16, 64, 64, 160],
];
const SMOKE_SHAPES: Array<[number, number, number, number]> = [
  [2, 256, 256, 40],
  [2, 256, 77, 40],
];

/** SD v1-4's unet/config.json (the keys that differ from diffusers' defaults). */
const SD_V1_UNET = {
  sample_size: 64,
  cross_attention_dim: 768,
  attention_head_dim: 8,
  block_out_channels: [320, 640, 1280, 1280],
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
};

async function timeAttention(
  shape: [number, number, number, number],
  fused: boolean,
  repeats: number,
): Promise<number[]> {
  const [bh, tq, tk, d] = shape;
  const [q, k, v] = [
    tf.randomNormal([1, bh, tq, d]),
    tf.randomNormal([1, bh, tk, d]),
    tf.randomNormal([1, bh, tk, d]),
  ] as tf.Tensor4D[];
  const f = fused ? scaledDotProductAttention : attentionOps;
  try {
    return await timeIt(
      async () => {
        const o = tf.tidy(() => tf.sum(f(q, k, v)));
        await o.data();
        o.dispose();
      },
      repeats,
      2,
    );
  } finally {
    tf.dispose([q, k, v]);
  }
}

async function unetStep(fused: boolean, size: number, repeats: number): Promise<number[]> {
  const cfg = parseUNetConfig(new ConfigReader('SD v1-4 unet/config.json', SD_V1_UNET));
  const p = new Params(0);
  const x = tf.randomNormal([2, size, size, 4]) as tf.Tensor4D;
  const ctx = tf.randomNormal([2, 77, 768]) as tf.Tensor3D;
  const t = tf.tensor1d([500, 500], 'int32');
  const saved = tf.getKernel(FUSED_ATTENTION, 'webgpu');
  if (!fused && saved) tf.unregisterKernel(FUSED_ATTENTION, 'webgpu');
  try {
    return await timeIt(
      async () => {
        const o = tf.tidy(() => tf.sum(unetForward(p, cfg, x, t, ctx)));
        await o.data();
        o.dispose();
      },
      repeats,
      1,
    );
  } finally {
    if (!fused && saved) tf.registerKernel(saved);
    p.dispose();
    tf.dispose([x, ctx, t]);
  }
}

async function main(): Promise<void> {
  const gpu = await webgpuForBench('bench-attention', allowSoftware);
  if (!gpu) return;
  const { info, software } = gpu;
  const smoke = software || args.includes('--smoke');
  const shapes = smoke ? SMOKE_SHAPES : FULL_SHAPES;
  const repeats = smoke ? 2 : 10;
  const rows: Record<string, unknown>[] = [];
  for (const s of shapes) {
    const fused = med(await timeAttention(s, true, repeats));
    const ops = med(await timeAttention(s, false, repeats));
    rows.push({ shape: s.join('x'), fused_ms: fused, ops_ms: ops });
    console.log(`attention ${s.join('×')}: fused ${fused.toFixed(1)} ms, ops ${ops.toFixed(1)} ms`);
  }
  const size = smoke ? 8 : 64;
  const unet = {
    size,
    fused_ms: med(await unetStep(true, size, smoke ? 1 : 5)),
    ops_ms: med(await unetStep(false, size, smoke ? 1 : 5)),
  };
  console.log(
    `SD v1 UNet CFG step (batch 2, ${size}²): fused ${unet.fused_ms.toFixed(0)} ms, ops ${unet.ops_ms.toFixed(0)} ms (PyTorch fp32 on an H200, the issue: 44 ms)`,
  );
  shutdownBackend();

  const py = pythonWith(['torch']);
  let torch: Record<string, unknown>[] = [];
  if (py && !smoke) {
    const r = await execa(
      py,
      [
        join(PROJECT_ROOT, 'bench', 'attention_torch.py'),
        '--device',
        'cuda',
        '--shapes',
        shapes.map((s) => s.join('x')).join(','),
      ],
      { reject: false },
    );
    torch = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    if (r.exitCode !== 0) console.log(`PyTorch side failed: ${r.stderr.split('\n').slice(-2).join(' ')}`);
  }
  for (const r of rows) {
    const t = torch.find((x) => x.shape === r.shape);
    Object.assign(r, { torch_sdpa_ms: t?.sdpa_ms ?? null, torch_explicit_ms: t?.explicit_ms ?? null });
  }
  const path = writeResult(smoke ? 'attention-smoke' : 'attention', {
    adapter: info.adapter,
    smoke,
    attention: rows,
    unet_cfg_step: unet,
    torch_reference_unet_cfg_step_ms: 44,
  });
  console.log(`wrote ${path}`);
}

await main();
