#!/usr/bin/env bash
# Every GPU check of the WebGPU backend, in one command, for a GPU host without npm: run it from
# `make bundle`'s output (dist/, copied anywhere) with a plain Node 20 on PATH (or NODE=…):
#
#   ./gpu-check.sh [OUT]            # OUT defaults to ./gpu-check-out
#
# Needs libvulkan.so.1 and the GPU driver's Vulkan ICD (NVIDIA: VK_DRIVER_FILES=…/nvidia_icd.json,
# found automatically under /usr/local/nvidia, /usr/share and /etc). PyTorch with CUDA, if present,
# gives the reference column of the benchmark. Steps (each logs to OUT/<step>.log and records its
# wall time and exit status in OUT/summary.json; a failed step does not stop the others):
#   doctor       the adapter Dawn found (vendor, architecture, limits); stops here without one
#   conformance  the webgpu conformance set against wasm (forward/gradients of every zoo model, DDIM,
#                SDD guidance step, HQS scan, a quick run, zoo eval), small shapes
#   bench        bench-gpu: U-Net train step B8/B64 at 32²/64², DDIM-50 ×100 with CFG, one SDD
#                iteration, featnet ×1000, each beside PyTorch CUDA fp32 → OUT/gpu.json; then the
#                dispatch, submit, pass, upload and buffer counts per step → OUT/webgpu-counts.json
#   attention    the fused attention kernel against the ops path (test/webgpu_attention, then
#                bench-attention at SD v1's shapes beside torch SDPA, and an SD v1 UNet CFG step at
#                64² with each path; target ≤ 3× PyTorch's 44 ms) → OUT/attention.json
#   parity       full-size SD v1-4 UNet/VAE, CLIP-L text and ViT-B/32 with seeded weights: the references
#                (PyTorch CUDA) and tfjs-webgpu side by side, max rel. error and ms per forward →
#                OUT/parity.log; needs DIFFUSERS=<diffusers v0.31.0 checkout> CLIP_REPO=<openai/CLIP
#                checkout> (e.g. `git archive v0.31.0 src | xz`, 0.7 MB, carried beside the bundle)
#   stylegan2    full-size StyleGAN2-FFHQ config-f (synthetic weights): rosinality's model.py on CUDA and
#                tfjs-webgpu, G(W+) and its W+ gradient, max rel. error and ms → OUT/stylegan2.log;
#                needs ROSINALITY=<rosinality/stylegan2-pytorch checkout>
#   paper-time   the paper's time column (make paper-time): experiments/paper/{sdd,sdedit,ddib}.yaml
#                --profile time on world paper-random (full size, random weights), then Eq. 13–15
#                → OUT/paper_time.json; with DIFFUSERS, ROSINALITY and INSIGHTFACE (TreB1eN/
#                InsightFace_Pytorch) checkouts also the same components in PyTorch fp32 and fp16
#                (the page: `node --import tsx bench/paper_time.ts --page OUT/paper_time-….json` in a checkout)
#   quick        table 1 PROFILE=quick on webgpu, timed (target ≤ 20 s), at --jobs 1, 2 and 4; then on
#                wasm, and every metric of the two compared (rel. 1e-3; rates within 1/n)
#   table1       table 1, full protocol (3 seeds, 150 runs), timed (target ≤ 10 min), at the
#                default --jobs; SWEEP_FULL=1 also times it at --jobs 1, 2 and 4
#   zoo          retrains every zoo model on the GPU into OUT/zoo (timed), then `zoo eval` of the
#                retrained models, and every card number that differs from the shipped card
#   torch-parity the torch engine's twins on CUDA against the same twins on the CPU, every zoo
#                model's World entry points and input gradients (fp32, TF32 off; bound 1e-4 of the
#                largest value; the CPU twins are held to the TS models in `make test`) → OUT/torch-parity.log
#   torch-quick  table 1 PROFILE=quick with --engine torch (evaluation on wasm), timed (target ≤ 15 s),
#                at --jobs auto (4 per GPU), 2 and 8: which default is best; then every metric against the tfjs quick table on wasm
#                (SDEdit/DDIB/DiffAE: rel. 1e-3, rates within 1/n; SDD and StyleCLIP train on other
#                noise streams on torch, so theirs are printed beside the seed spread, not held to it)
#   torch-table1 table 1, full protocol (150 runs) with --engine torch, timed (target ≤ 5 min)
#   torch-paper-parity  the paper's torch twins at full size on CUDA: paper-random's SD v1 UNet, VAE,
#                CLIP-L text and ViT-B/32 (seeded weights) against the same twins on the CPU
#                (python/tests/sd_parity.py --device-check full cuda: fp32, TF32 off, bound 1e-4 of the
#                largest value, then the UNet CFG step's ms), and StyleGAN2 config-f / IR-SE50, float32
#                against float64 (gan_parity.py --full cuda: bounds 1e-4 forwards, 5e-3 gradients)
#                → OUT/torch-paper-parity.log, OUT/torch-paper-gan.log
#   torch-paper-time  experiments/paper/{sdd,sdedit,ddib}.yaml --profile time --engine torch on
#                paper-random (the twins draw their own seeded full-size weights; the harness plans,
#                hands over W+ codes and evaluates on SDD_BACKEND): each run's τ_train, τ_infer, HQS
#                scan and peak GPU memory, then bench/paper_time.mjs's Eq. 13–15 over them, beside the
#                plain PyTorch script's column when paper-time wrote OUT/paper_time_torch.json
#                → OUT/paper_time-torch.json
# STEPS="doctor bench" runs a subset; STEPS=round3 is the preset that fits 8 minutes on one GPU:
# doctor, torch-parity, torch-quick, torch-paper-time for SDEdit and DDIB, and the webgpu paper-random
# SDD profile (paper-time's SDD run). STEPS=webgpu is issue #32's: doctor, bench (conv backprop test,
# U-Net train step vs PyTorch, dispatch counts), attention (SD v1 CFG step vs PyTorch), paper-time
# (each paper-random webgpu run's peak memory) and quick (quick Table 1 on webgpu vs 2 CPU cores); not
# yet timed on a GPU: if it passes 10 minutes, run its steps in two calls.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mkdir -p "${1:-$PWD/gpu-check-out}" && cd "${1:-$PWD/gpu-check-out}" && pwd)
NODE=${NODE:-node}
STEPS=${STEPS:-doctor conformance bench attention parity stylegan2 paper-time quick table1 torch-parity torch-quick torch-table1 torch-paper-parity torch-paper-time zoo}
# round3 times the torch paper profile of SDEdit and DDIB only (SDD's, with its 200-image HQS and
# model set-up, is paper-time's and torch-paper-time's full run): TORCH_PAPER picks the files.
[[ $STEPS == round3 ]] && STEPS="doctor torch-parity torch-quick torch-paper-time paper-sdd" && TORCH_PAPER=${TORCH_PAPER:-"sdedit ddib"}
[[ $STEPS == webgpu ]] && STEPS="doctor bench attention paper-time quick"
# The torch engine's interpreter (sdd doctor shows which one runs): SDD_PYTHON, else python3.
export SDD_PYTHON=${SDD_PYTHON:-${PYTHON:-python3}}
SDD=("$NODE" "$HERE/sdd.mjs")
export SDD_REPORT=0 SDD_CACHE="$OUT/cache" SDD_BACKEND=webgpu

if [[ -z ${VK_DRIVER_FILES:-} && -z ${VK_ICD_FILENAMES:-} ]]; then
  for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
    if [[ -e $f ]]; then export VK_DRIVER_FILES=$f; break; fi
  done
fi

summary="$OUT/summary.jsonl"
: >"$summary"
# step NAME COMMAND…: runs, logs, records {step, rc, seconds}; prints one line.
step() {
  local name=$1
  shift
  local t0 rc ms
  t0=$(date +%s%N)
  "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  ms=$((($(date +%s%N) - t0) / 1000000))
  printf '{"step":"%s","rc":%d,"seconds":%d.%03d}\n' "$name" "$rc" $((ms / 1000)) $((ms % 1000)) >>"$summary"
  printf '%-28s rc=%d  %7d.%01d s   (log: %s)\n' "$name" "$rc" $((ms / 1000)) $((ms % 1000 / 100)) "$OUT/$name.log"
  return $rc
}
wants() { [[ " $STEPS " == *" $1 "* ]]; }

# peak_memory STORE: each run's device memory at its end (result.json `memory`: tensors, bytes in
# use and pooled, the peak), one line per run; failed runs with their reason.
peak_memory() {
  "$NODE" -e '
    const fs = require("fs"), path = require("path");
    const gib = (b) => (b / 2 ** 30).toFixed(2) + " GiB";
    for (const id of fs.readdirSync(process.argv[1])) {
      const d = path.join(process.argv[1], id), f = (n) => path.join(d, n);
      if (!fs.existsSync(f("config.json"))) continue;
      const m = JSON.parse(fs.readFileSync(f("config.json"))).method.name;
      if (fs.existsSync(f("result.json"))) {
        const r = JSON.parse(fs.readFileSync(f("result.json"))), mem = r.memory || {};
        console.log("memory", id, m, "peak", gib(mem.peak_bytes || 0), "in use", gib(mem.bytes_in_use || 0), "pooled", gib(mem.bytes_pooled || 0), "wall", r.wall_s, "s");
      } else if (fs.existsSync(f("error.json"))) console.log("memory", id, m, "FAILED:", JSON.parse(fs.readFileSync(f("error.json"))).message.slice(0, 200));
    }' "$1"
}

echo "gpu-check: bundle $HERE, results in $OUT, VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"
if wants doctor; then
  if ! step doctor "${SDD[@]}" doctor --json; then
    echo "no WebGPU adapter: see $OUT/doctor.log" >&2
    exit 1
  fi
  "${SDD[@]}" doctor 2>/dev/null | sed -n '1,6p'
fi

if wants conformance; then
  step conformance "$NODE" --test --test-reporter=spec "$HERE/test/webgpu_conformance.test.mjs"
  grep -E '^\s*(✔|✖|﹣|ℹ (tests|pass|fail|skipped))' "$OUT/conformance.log" | tail -40
fi

if wants bench; then
  # Our conv backprop programs (the train step's gradients) against the cpu backend on this GPU first.
  step conv-backprop-test "$NODE" --test --test-reporter=spec "$HERE/test/webgpu_conv_backprop.test.mjs"
  grep -E '^\s*(✔|✖|﹣|ℹ (tests|pass|fail|skipped))' "$OUT/conv-backprop-test.log" | tail -15
  step bench "$NODE" "$HERE/bench/gpu.mjs"
  cp "$HERE/bench/results/gpu.json" "$OUT/gpu.json" 2>/dev/null
  sed -n '/^workload/,/^wrote/p' "$OUT/bench.log"
  # #32's host-side counts per U-Net train step and DDIM step (dispatches, submits, passes, uploads,
  # buffers created), before and after its speed-ups, at each submit batch size.
  step bench-counts "$NODE" "$HERE/bench/webgpu_counts.mjs"
  cp "$HERE/bench/results/webgpu-counts.json" "$OUT/webgpu-counts.json" 2>/dev/null
  tail -25 "$OUT/bench-counts.log"
fi

if wants attention; then
  step attention-test "$NODE" --test --test-reporter=spec "$HERE/test/webgpu_attention.test.mjs"
  step attention "$NODE" "$HERE/bench/attention.mjs"
  cp "$HERE/bench/results/attention.json" "$OUT/attention.json" 2>/dev/null
  grep -E '^(attention|SD v1|wrote)' "$OUT/attention.log"
fi

if wants parity; then
  if [[ -n ${DIFFUSERS:-} && -n ${CLIP_REPO:-} ]]; then
    step parity-reference "${PYTHON:-python3}" "$HERE/tools/make_full_parity.py" --diffusers "$DIFFUSERS" --clip-repo "$CLIP_REPO" --out "$OUT/parity" --latent 64 --device cuda
    step parity "$NODE" "$HERE/bench/full_parity.mjs" "$OUT/parity" --backend webgpu
    grep -E 'max\|' "$OUT/parity.log"
  else
    echo "parity: skipped (set DIFFUSERS and CLIP_REPO to the reference checkouts)"
  fi
fi

if wants stylegan2; then
  if [[ -n ${ROSINALITY:-} ]]; then
    step stylegan2-reference "${PYTHON:-python3}" "$HERE/tools/make_stylegan2_fixture.py" --rosinality "$ROSINALITY" --full --out "$OUT/stylegan2" --device cuda
    step stylegan2 "$NODE" "$HERE/bench/stylegan2_parity.mjs" "$OUT/stylegan2" --backend webgpu
    grep -E 'max\|' "$OUT/stylegan2.log"
  else
    echo "stylegan2: skipped (set ROSINALITY to a rosinality/stylegan2-pytorch checkout)"
  fi
fi

if wants paper-time; then
  PAPER=(experiments/paper/sdd.yaml experiments/paper/sdedit.yaml experiments/paper/ddib.yaml)
  paper_runs() { (cd "$HERE" && "${SDD[@]}" run "${PAPER[@]}" --profile time --jobs 1 --store "$OUT/runs-paper-time" --no-report --backend "$SDD_BACKEND"); }
  step paper-time-runs paper_runs
  torch_args=()
  if [[ -n ${DIFFUSERS:-} && -n ${ROSINALITY:-} && -n ${INSIGHTFACE:-} ]]; then
    step paper-time-torch "${PYTHON:-python3}" "$HERE/bench/paper_time_torch.py" --diffusers "$DIFFUSERS" --rosinality "$ROSINALITY" --insightface "$INSIGHTFACE" --device cuda --out "$OUT/paper_time_torch.json"
    torch_args=(--torch "$OUT/paper_time_torch.json")
  else
    echo "paper-time: PyTorch column skipped (set DIFFUSERS, ROSINALITY and INSIGHTFACE)"
  fi
  step paper-time "$NODE" "$HERE/bench/paper_time.mjs" --store "$OUT/runs-paper-time" "${torch_args[@]}" --no-report
  cp "$HERE"/bench/results/paper_time-*.json "$OUT/" 2>/dev/null
  sed -n '1,20p' "$OUT/paper-time.log"
  peak_memory "$OUT/runs-paper-time"
fi

# compare_metrics STORE_A STORE_B NAME_A NAME_B: every metric of the runs in both stores (ids
# present in B), continuous ones within rel. 1e-3, rates within 1/n; METHODS_LOOSE (regex on the
# method) are printed as "seed" lines instead of being held to it. Exit 1 if any held one differs.
compare_metrics() {
  "$NODE" -e '
    const fs = require("fs"), path = require("path");
    const [a0, b0, na, nb, loose] = process.argv.slice(1);
    let bad = 0;
    for (const id of fs.readdirSync(b0)) {
      const f = (d) => path.join(d, id, "result.json");
      if (!fs.existsSync(f(b0))) continue;
      if (!fs.existsSync(f(a0))) { console.log(id, "missing on", na); bad++; continue; }
      const b = JSON.parse(fs.readFileSync(f(b0))).metrics, a = JSON.parse(fs.readFileSync(f(a0))).metrics;
      const method = JSON.parse(fs.readFileSync(path.join(b0, id, "config.json"))).method.name;
      const held = !(loose && new RegExp(loose).test(method));
      for (const k of ["fid", "kid", "clip_directional", "clip_score", "identity", "hit_rate", "preservation_rate", "hit_and_preserved"]) {
        if (typeof b[k] !== "number") continue;
        const rate = /rate|hit_and/.test(k), d = Math.abs(a[k] - b[k]);
        const ok = rate ? d <= 1 / b.n + 1e-12 : d <= 1e-3 * Math.max(1, Math.abs(b[k]));
        if (!ok && held) bad++;
        console.log(!held ? "seed" : ok ? "ok  " : "DIFF", id, method, k, nb, b[k], na, a[k]);
      }
    }
    process.exit(bad ? 1 : 0);' "$1" "$2" "$3" "$4" "${METHODS_LOOSE:-}"
}

TABLE1=(experiments/table1/sdd.yaml experiments/table1/sdedit.yaml experiments/table1/ddib.yaml experiments/table1/diffae.yaml experiments/tradeoff.yaml)
table1() { # table1 PROFILE JOBS
  local store="$OUT/runs-$1-j$2"
  rm -rf "$store"
  (cd "$HERE" && "${SDD[@]}" run "${TABLE1[@]}" ${1:+--profile "$1"} --jobs "$2" --store "$store" --no-report --backend "$SDD_BACKEND" ${ENGINE:+--engine "$ENGINE"})
}
if wants quick; then
  for j in 1 2 4; do step "quick-jobs$j" table1 quick "$j"; done
  # The same quick table on wasm, and every metric compared: continuous metrics within rel. 1e-3,
  # rates within 1/n (one judge decision), as the conformance set's end-to-end check.
  (export SDD_BACKEND=wasm SDD_CACHE="$OUT/cache-wasm"; step quick-wasm table1 quick auto)
  compare_metrics "$OUT/runs-quick-j1" "$OUT/runs-quick-jauto" webgpu wasm >"$OUT/quick-compare.log" 2>&1
  echo "quick table 1, webgpu vs wasm: rc=$? ($(grep -c '^ok' "$OUT/quick-compare.log") metrics agree, $(grep -c '^DIFF' "$OUT/quick-compare.log") differ; $OUT/quick-compare.log)"
fi
if wants table1; then
  jobs_list=(auto)
  [[ ${SWEEP_FULL:-0} == 1 ]] && jobs_list=(1 2 4)
  for j in "${jobs_list[@]}"; do step "table1-jobs$j" table1 "" "$j"; done
fi

if wants torch-parity; then
  step torch-parity env PYTHONPATH="$HERE/python" "$SDD_PYTHON" -m tests.device_parity "$HERE/datasets/toyfaces/zoo" --device cuda
  grep -E '^(ok|OVER) ' "$OUT/torch-parity.log"
fi
if wants torch-quick; then
  # The torch engine computes; the harness evaluates the edits on wasm (32² images: the CPU is enough).
  for j in auto 2 8; do (export SDD_BACKEND=wasm ENGINE=torch; step "torch-quick-jobs$j" table1 quick "$j"; mv "$OUT/runs-quick-j$j" "$OUT/runs-torch-quick-j$j"); done
  [[ -d $OUT/runs-quick-jauto ]] || (export SDD_BACKEND=wasm SDD_CACHE="$OUT/cache-wasm"; step quick-wasm table1 quick auto)
  METHODS_LOOSE='^(sdd|styleclip)$' compare_metrics "$OUT/runs-torch-quick-jauto" "$OUT/runs-quick-jauto" torch tfjs-wasm >"$OUT/torch-quick-compare.log" 2>&1
  echo "quick table 1, torch vs tfjs (wasm): rc=$? ($(grep -c '^ok' "$OUT/torch-quick-compare.log") agree, $(grep -c '^DIFF' "$OUT/torch-quick-compare.log") differ, $(grep -c '^seed' "$OUT/torch-quick-compare.log") seed-level; $OUT/torch-quick-compare.log)"
fi
if wants torch-table1; then
  (export SDD_BACKEND=wasm ENGINE=torch; step torch-table1 table1 "" auto; mv "$OUT/runs--jauto" "$OUT/runs-torch-table1")
fi
if wants torch-paper-parity; then
  step torch-paper-parity env PYTHONPATH="$HERE/python" "$SDD_PYTHON" -m tests.sd_parity --device-check full cuda
  cat "$OUT/torch-paper-parity.log"
  step torch-paper-gan env PYTHONPATH="$HERE/python" "$SDD_PYTHON" -m tests.gan_parity --full cuda
  cat "$OUT/torch-paper-gan.log"
fi
if wants torch-paper-time; then
  PAPER=()
  for m in ${TORCH_PAPER:-sdd sdedit ddib}; do PAPER+=("experiments/paper/$m.yaml"); done
  torch_paper_runs() { (cd "$HERE" && "${SDD[@]}" run "${PAPER[@]}" --profile time --engine torch --jobs 1 --store "$OUT/runs-torch-paper-time" --no-report --backend "$SDD_BACKEND"); }
  step torch-paper-time-runs torch_paper_runs
  tail -6 "$OUT/torch-paper-time-runs.log"
  # Each run's τ as the twin measured it (device-synchronised), its peak memory (the GPU's on CUDA) and wall time.
  "$NODE" -e '
    const fs = require("fs"), path = require("path");
    const s = (v) => (typeof v === "number" ? v.toPrecision(4) : String(v));
    for (const id of fs.readdirSync(process.argv[1])) {
      const f = (n) => path.join(process.argv[1], id, n);
      if (!fs.existsSync(f("config.json"))) continue;
      const m = JSON.parse(fs.readFileSync(f("config.json"))).method.name;
      if (!fs.existsSync(f("result.json"))) { console.log("tau", id, m, "FAILED:", fs.existsSync(f("error.json")) ? JSON.parse(fs.readFileSync(f("error.json"))).message.slice(0, 200) : "no result"); continue; }
      const r = JSON.parse(fs.readFileSync(f("result.json"))).metrics;
      console.log("tau", id, m, "tau_train_s", s(r.tau_train_s), "tau_infer_s", s(r.tau_infer_s), "hqs_s", s(r.hqs_s), "peak_memory", ((r.peak_memory_bytes || 0) / 2 ** 30).toFixed(2), "GiB", "engine_wall_s", s(r.engine_wall_s));
    }' "$OUT/runs-torch-paper-time"
  torch_args=()
  [[ -f $OUT/paper_time_torch.json ]] && torch_args=(--torch "$OUT/paper_time_torch.json")
  step torch-paper-time "$NODE" "$HERE/bench/paper_time.mjs" --store "$OUT/runs-torch-paper-time" "${torch_args[@]}" --no-report
  cp "$HERE/bench/results/paper_time-paper-random-$SDD_BACKEND.json" "$OUT/paper_time-torch.json" 2>/dev/null
  sed -n '1,20p' "$OUT/torch-paper-time.log"
fi
if wants paper-sdd; then
  # The webgpu paper-random SDD profile alone (paper-time's SDD run): does it finish in GPU memory?
  step paper-sdd bash -c "cd '$HERE' && '$NODE' sdd.mjs run experiments/paper/sdd.yaml --profile time --jobs 1 --store '$OUT/runs-paper-sdd' --no-report --backend webgpu"
  tail -3 "$OUT/paper-sdd.log"
  peak_memory "$OUT/runs-paper-sdd"
fi

if wants zoo; then
  export SDD_ZOO_DIR="$OUT/zoo"
  rm -rf "$SDD_ZOO_DIR"
  mkdir -p "$SDD_ZOO_DIR"
  step zoo-train "${SDD[@]}" zoo train
  step zoo-eval "${SDD[@]}" zoo eval --json
  unset SDD_ZOO_DIR
  # The paired regression report needs the report renderer, which the bundle leaves out: from a
  # checkout, `make regress CANDIDATE=zoo:OUT/zoo` compares the retrained zoo with the shipped one.
  # Card numbers, retrained vs shipped, every leaf that differs.
  "$NODE" -e '
    const fs = require("fs"), path = require("path");
    const [shipped, mine] = process.argv.slice(1);
    const leaves = (o, k = "") => (o && typeof o === "object" ? Object.entries(o).flatMap(([kk, v]) => leaves(v, k ? k + "." + kk : kk)) : [[k, o]]);
    for (const m of fs.readdirSync(mine)) {
      const f = path.join(mine, m, "card.json");
      if (!fs.existsSync(f)) continue;
      const a = new Map(leaves(JSON.parse(fs.readFileSync(path.join(shipped, m, "card.json"))).metrics));
      const b = JSON.parse(fs.readFileSync(f)).metrics;
      console.log(m, "train wall", JSON.parse(fs.readFileSync(f)).training?.wall_s ?? "?", "s");
      for (const [k, v] of leaves(b)) if (typeof v === "number" && a.get(k) !== v) console.log("  ", k, "shipped", a.get(k), "retrained", v);
    }' "$HERE/datasets/toyfaces/zoo" "$OUT/zoo" | tee "$OUT/zoo-cards.txt"
fi

echo "summary: $summary"
cat "$summary"
