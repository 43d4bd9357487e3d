"""schedulers.json for tools/make_sd_fixture.py: what diffusers' DDIMScheduler itself gives for
scheduler_config.json settings beyond SD v1-4's (every timestep_spacing at many step counts, ᾱ with
rescale_betas_zero_snr in float32 and float64, whole DDIM loops for ε and v prediction, η 0 and > 0).
"""
from typing import Any, Dict, List, Tuple

SPACINGS = ("leading", "trailing", "linspace")
STEP_COUNTS = (1, 2, 3, 7, 10, 16, 25, 50, 100, 333, 999)
# Whole DDIM loops: (name, scheduler_config overrides, steps, eta)
LOOPS: Tuple[Tuple[str, Dict[str, Any], int, float], ...] = (
    ("trailing_eps", {"timestep_spacing": "trailing"}, 10, 0.0),
    ("linspace_eps_eta", {"timestep_spacing": "linspace"}, 10, 0.5),
    ("leading_zero_snr_eps", {"rescale_betas_zero_snr": True}, 10, 0.0),
    (
        "trailing_zero_snr_v",
        {"timestep_spacing": "trailing", "rescale_betas_zero_snr": True, "prediction_type": "v_prediction"},
        10,
        0.0,
    ),
    (
        "trailing_zero_snr_v_eta_one",
        {
            "timestep_spacing": "trailing",
            "rescale_betas_zero_snr": True,
            "prediction_type": "v_prediction",
            "set_alpha_to_one": True,
        },
        7,
        0.3,
    ),
    ("trailing_zero_snr_eps", {"timestep_spacing": "trailing", "rescale_betas_zero_snr": True}, 10, 0.0),
)


def ddim_loop(torch: Any, sched: Any, steps: int, eta: float, seed: int) -> Dict[str, Any]:
    """A loop of sched.step from x_T with seeded model outputs (and variance noise when η > 0), every step recorded."""
    g = torch.Generator().manual_seed(seed)
    sched.set_timesteps(steps)
    x = torch.randn(1, 4, 2, 2, generator=g)
    rec: Dict[str, Any] = {
        "timesteps": sched.timesteps.tolist(),
        "x": [x.flatten().tolist()],
        "model_output": [],
        "noise": [],
        "prev": [],
        "x0": [],
    }
    for t in sched.timesteps:
        out = torch.randn(x.shape, generator=g)
        noise = torch.randn(x.shape, generator=g) if eta > 0 else None
        res = sched.step(out, t, x, eta=eta, variance_noise=noise)
        rec["model_output"].append(out.flatten().tolist())
        if noise is not None:
            rec["noise"].append(noise.flatten().tolist())
        # ε-prediction at ᾱ = 0 divides by zero: record that, and stop (JSON has no NaN)
        if not torch.isfinite(res.prev_sample).all():
            rec["nonfinite_at"] = int(t)
            break
        rec["prev"].append(res.prev_sample.flatten().tolist())
        rec["x0"].append(res.pred_original_sample.flatten().tolist())
        x = res.prev_sample
        rec["x"].append(x.flatten().tolist())
    return rec


def scheduler_cases(torch: Any, DDIMScheduler: Any, sd14: Dict[str, Any]) -> Dict[str, Any]:
    """schedulers.json's content: timesteps, zero-SNR ᾱ and whole loops, all from DDIMScheduler itself,
    around `sd14` (SD v1-4's scheduler_config.json)."""
    from diffusers.schedulers.scheduling_ddim import rescale_zero_terminal_snr

    timesteps: List[Dict[str, Any]] = []
    for spacing in SPACINGS:
        for n in STEP_COUNTS:
            s = DDIMScheduler.from_config({**sd14, "timestep_spacing": spacing})
            s.set_timesteps(n)
            timesteps.append({"spacing": spacing, "steps_offset": 1, "steps": n, "timesteps": s.timesteps.tolist()})
    alphas: Dict[str, Any] = {}
    schedules: Tuple[Tuple[str, Dict[str, Any]], ...] = (
        ("scaled_linear", sd14),
        ("linear", {"beta_schedule": "linear"}),
    )
    for schedule, cfg in schedules:
        s = DDIMScheduler.from_config({**cfg, "rescale_betas_zero_snr": True})
        b64 = (
            torch.linspace(
                cfg.get("beta_start", 0.0001) ** 0.5, cfg.get("beta_end", 0.02) ** 0.5, 1000, dtype=torch.float64
            )
            ** 2
            if schedule == "scaled_linear"
            else torch.linspace(0.0001, 0.02, 1000, dtype=torch.float64)
        )
        a64 = torch.cumprod(1 - rescale_zero_terminal_snr(b64), 0)
        alphas[schedule] = {"float32": s.alphas_cumprod.tolist(), "float64": a64.tolist()}
    loops: Dict[str, Any] = {}
    for i, (name, over, steps, eta) in enumerate(LOOPS):
        cfg = {**sd14, "clip_sample": False, **over}
        loops[name] = {
            "config": cfg,
            "steps": steps,
            "eta": eta,
            **ddim_loop(torch, DDIMScheduler.from_config(cfg), steps, eta, 10 + i),
        }
    return {"timesteps": timesteps, "zero_snr_alphas_cumprod": alphas, "loops": loops}
