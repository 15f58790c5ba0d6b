"""The LSGAN paper's 2-D experiment (Fig. 7): a mixture of 8 Gaussians, regular GAN vs LSGAN.

Data: 8 modes evenly spaced on the unit circle, each an isotropic Gaussian of std 0.01
(as in the paper). Model: `mlp2d` from the registry; settings from `configs/mog8.toml` plus
`key=value` overrides, with `loss.kind` set by the experiment. The paper's claim is that
the regular GAN collapses onto few modes while LSGAN covers all eight.

All seeds train at once: each seed builds its own models (torch.manual_seed(seed), as
a single run would), their weights are stacked on a leading axis and every layer runs as
one batched matrix product (`mlp2d.stacked_forward`). The loss is the sum of the seeds'
own mean losses, so each seed's gradients, and Adam's element-wise updates, are its own:
seeds do not interact. Noise and data come from one RNG per seed. Losses stay tensors
until an evaluation step, the only host synchronisation.

At step 0, every `train.sample_every` steps and the last step, the experiment draws
2,500 samples per seed from fixed noise and measures, for each radius r:
  modes covered   modes with at least 20 samples within r of their centre
  high quality    share of samples within r of any centre
Used settings: model.*, loss.*, train.{steps, batch_size, lr_g, lr_d, beta1, beta2,
order, sample_every, log_every, device}; the others (EMA, precision, checkpoints) do
not apply here.

Output (DIR is --out):
  DIR/<loss>/seed_<k>/metrics.json   per evaluation step: modes covered, high quality, losses
  DIR/<loss>/seed_<k>/samples.npz    the evaluated samples (step_0005000: (2500, 2) float32, ...)
  DIR/<loss>/seed_<k>/samples.png    a density picture per evaluation step
  DIR/<loss>/seed_<k>/generator.pt   the final generator (state dict + config; weights_only loads it)
  DIR/<loss>/run.json                config, seeds, speed
  DIR/summary.json                   mean and spread over seeds per loss, step and radius; LSGAN's a, b, c
  DIR/compare.png                    the losses side by side, like the paper's Fig. 7
Runs for different losses or seed ranges may share DIR: the summary and the figure are
rebuilt from every seed folder present.
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..config import Config, apply_overrides, load_config
from ..data_tools_api import InputError, atomic_output, save_png
from ..models import build_models
from ..models.mlp2d import stack_parameters, stacked_forward, unstack_parameters
from ..progress import Progress, format_duration
from ..runtime import resolve_device
from ..training.losses import make_loss
from .common import spread, write_json
from .mog_figures import comparison_figure, density_panel, picture_row

MODES = 8
CIRCLE_RADIUS = 1.0
MODE_STD = 0.01
EVAL_SAMPLES = 2500
MIN_MODE_SAMPLES = 20
RADII = (0.03, 0.1, 0.2)  # 3 std, and two looser radii
LOSS_NAMES = {"lsgan": "LSGAN", "bce": "regular GAN"}
ESTIMATE_STEPS = 30  # timed at the start for the run-time estimate


def mode_centres(device: torch.device | str = "cpu") -> Tensor:
    """(8, 2) centres on the unit circle, the first at (1, 0)."""
    angles = torch.arange(MODES, dtype=torch.float32, device=device) * (2 * math.pi / MODES)
    return CIRCLE_RADIUS * torch.stack([angles.cos(), angles.sin()], dim=1)


def sample_mixture(n: int, rng: torch.Generator, centres: Tensor, std: float = MODE_STD) -> Tensor:
    """n points (n, 2) from the mixture: a uniformly chosen centre plus N(0, std²) noise."""
    which = torch.randint(0, len(centres), (n,), generator=rng, device=centres.device)
    return centres[which] + std * torch.randn(n, 2, generator=rng, device=centres.device)


def mode_metrics(points: Tensor, centres: Tensor, radii: Sequence[float] = RADII,
                 min_samples: int = MIN_MODE_SAMPLES) -> tuple[Tensor, Tensor]:
    """Modes covered and high-quality share for points (..., N, 2): two (..., R) tensors.

    A mode is covered when at least `min_samples` points lie within r of its centre; the
    high-quality share is the fraction of points within r of any centre.
    """
    distances = torch.cdist(points.float(), centres.expand(*points.shape[:-2], *centres.shape))  # (..., N, M)
    radius = torch.as_tensor(radii, dtype=distances.dtype, device=distances.device)
    inside = distances.unsqueeze(-1) <= radius  # (..., N, M, R)
    covered = (inside.sum(dim=-3) >= min_samples).sum(dim=-2)  # (..., R)
    high_quality = inside.any(dim=-2).float().mean(dim=-2)  # (..., R)
    return covered, high_quality


def mog_config(config_path: str | Path | None, overrides: Sequence[str], loss: str) -> Config:
    """The experiment's config: the TOML file, the overrides, then loss.kind = `loss`."""
    if loss not in LOSS_NAMES:
        raise InputError(f"--loss must be one of {', '.join(LOSS_NAMES)}, got {loss!r}")
    config = load_config(config_path, overrides)
    config = apply_overrides(copy.deepcopy(config), [f"loss.kind={loss}"])
    if config.model.arch != "mlp2d":
        raise InputError(f"the MoG experiment needs model.arch = 'mlp2d' (2-D points), got {config.model.arch!r}")
    return config


def evaluation_steps(total: int, every: int) -> list[int]:
    return sorted(set(range(0, total + 1, every)) | {total})


def run_mog(config: Config, seeds: Sequence[int], out: str | Path) -> dict:
    """Train every seed of one loss (config.loss.kind) together; write per-seed results and
    the run record, then rebuild the summary and the figure of `out`. Returns the summary."""
    if not seeds:
        raise InputError("--seeds names no seed")
    out = Path(out)
    loss_dir = out / config.loss.kind
    settings = config.train
    device = resolve_device(settings.device)
    count = len(seeds)
    loss = make_loss(config.loss)
    centres = mode_centres(device)

    generators, discriminators = [], []
    for seed in seeds:
        torch.manual_seed(seed)  # each seed's initial weights are what a single run of it would get
        g, d = build_models(config.model, 0, 0)
        generators.append(g)
        discriminators.append(d)
    g_params, d_params = stack_parameters(generators), stack_parameters(discriminators)
    for params in (g_params, d_params):
        for index, tensor in enumerate(params):
            params[index] = tensor.detach().to(device).requires_grad_()
    optimizer_g = torch.optim.Adam(g_params, lr=settings.lr_g, betas=(settings.beta1, settings.beta2))
    optimizer_d = torch.optim.Adam(d_params, lr=settings.lr_d, betas=(settings.beta1, settings.beta2))
    z_dim = generators[0].z_dim
    noise_rngs = [torch.Generator(device).manual_seed(seed) for seed in seeds]
    data_rngs = [torch.Generator(device).manual_seed(seed + 1_000_003) for seed in seeds]
    eval_z = torch.stack([torch.randn(EVAL_SAMPLES, z_dim, generator=torch.Generator(device).manual_seed(seed + 1), device=device)
                          for seed in seeds])  # fixed per seed, so pictures compare step to step
    batch = settings.batch_size

    def evaluate() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with torch.no_grad():
            points = stacked_forward(g_params, eval_z)  # (S, 2500, 2)
            covered, quality = mode_metrics(points, centres)
        return points.cpu().numpy(), covered.cpu().numpy(), quality.cpu().numpy()

    def train_step() -> Tensor:
        z = torch.stack([torch.randn(batch, z_dim, generator=rng, device=device) for rng in noise_rngs])  # (S, B, z)
        real = torch.stack([sample_mixture(batch, rng, centres) for rng in data_rngs])  # (S, B, 2)
        fake = stacked_forward(g_params, z)  # (S, B, 2)
        # Each loss is a mean over all seeds' samples; times S it is the sum of per-seed means.
        def d_step() -> Tensor:
            value = loss.discriminator(stacked_forward(d_params, real), stacked_forward(d_params, fake.detach())) * count
            optimizer_d.zero_grad(set_to_none=True)
            value.backward()
            optimizer_d.step()
            return value.detach()

        def g_step() -> Tensor:
            value = loss.generator(stacked_forward(d_params, fake)) * count
            optimizer_g.zero_grad(set_to_none=True)
            value.backward()
            optimizer_g.step()
            return value.detach()

        if settings.order == "g_then_d":
            g_loss = g_step()
            d_loss = d_step()
        else:  # the paper's order: D, then G on the same z
            d_loss = d_step()
            g_loss = g_step()
        return torch.stack([d_loss, g_loss]) / count

    steps = set(evaluation_steps(settings.steps, settings.sample_every))
    history: dict[int, tuple] = {}
    label = f"MoG {LOSS_NAMES[config.loss.kind]}, {count} seed{'s' if count > 1 else ''}"
    progress = Progress(settings.steps, label, every=settings.log_every)
    loss_sum = torch.zeros(2, device=device)
    last_eval = 0
    started = time.perf_counter()
    history[0] = (*evaluate(), [math.nan, math.nan])
    for step in range(1, settings.steps + 1):
        loss_sum += train_step()
        if step == min(ESTIMATE_STEPS, settings.steps):
            progress.estimate(step, time.perf_counter() - started, what=f" steps, {count} seed{'s' if count > 1 else ''} at once")
        if step in steps:
            points, covered, quality = evaluate()
            history[step] = (points, covered, quality, (loss_sum / (step - last_eval)).tolist())
            loss_sum.zero_()
            last_eval = step
            status = {"modes": f"{covered[:, 1].mean():.1f}", "hq": f"{quality[:, 1].mean():.2f}"}
        else:
            status = {}
        progress.update(1, **status)
    progress.close()
    seconds = time.perf_counter() - started

    for position, seed in enumerate(seeds):
        _write_seed(loss_dir / f"seed_{seed}", config, seed, position, history, generators[position], g_params)
    write_json({"loss": config.loss.kind, "seeds": list(seeds), "config": config.to_dict(), "seconds": seconds,
                "steps_per_s": settings.steps / seconds, "seed_steps_per_s": settings.steps * count / seconds,
                "device": str(device), "torch_threads": torch.get_num_threads()}, loss_dir / "run.json")
    progress.line(f"{label}: {settings.steps} steps in {format_duration(seconds)} "
                  f"({settings.steps / seconds:.1f} steps/s, {settings.steps * count / seconds:.1f} seed-steps/s)")
    return write_summary(out)


def output_files(out: str | Path, loss: str, seeds: Sequence[int]) -> list[Path]:
    """Every file `run_mog` writes under `out` for one loss and these seeds (see the module docstring)."""
    loss_dir = Path(out) / loss
    seed_files = [loss_dir / f"seed_{seed}" / name for seed in seeds
                  for name in ("metrics.json", "samples.npz", "samples.png", "generator.pt")]
    return [*seed_files, loss_dir / "run.json", Path(out) / "summary.json", Path(out) / "compare.png"]


def _write_seed(folder: Path, config: Config, seed: int, position: int, history: dict, generator, g_params) -> None:
    steps = sorted(history)
    record = {
        "seed": seed, "loss": config.loss.kind, "steps": steps, "radii": list(RADII),
        "min_mode_samples": MIN_MODE_SAMPLES, "samples": EVAL_SAMPLES,
        "modes_covered": {str(r): [int(history[s][1][position, i]) for s in steps] for i, r in enumerate(RADII)},
        "high_quality": {str(r): [float(history[s][2][position, i]) for s in steps] for i, r in enumerate(RADII)},
        "d_loss": [history[s][3][0] for s in steps], "g_loss": [history[s][3][1] for s in steps],
    }
    write_json(record, folder / "metrics.json")
    with atomic_output(folder / "samples.npz") as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(handle, **{f"step_{s:07d}": history[s][0][position].astype(np.float32) for s in steps})
    panels = [density_panel(history[s][0][position], mode_centres().numpy(), f"step {s}",
                            f"{history[s][1][position, 1]} modes, hq {history[s][2][position, 1]:.0%}") for s in steps]
    save_png(picture_row(panels), folder / "samples.png")
    weights = unstack_parameters(g_params, position, copy.deepcopy(generator).cpu())
    with atomic_output(folder / "generator.pt") as temporary:
        torch.save({"config": config.to_dict(), "seed": seed, "generator": weights.state_dict()}, temporary)


def load_seed_results(out: str | Path) -> dict[str, list[dict]]:
    """Every seed's metrics.json under `out`, by loss, in seed order."""
    results: dict[str, list[dict]] = {}
    for loss in LOSS_NAMES:
        records = []
        for path in sorted(Path(out, loss).glob("seed_*/metrics.json")):
            records.append(json.loads(path.read_text(encoding="utf-8")))
        if records:
            results[loss] = sorted(records, key=lambda r: r["seed"])
    return results


def write_summary(out: str | Path) -> dict:
    """Aggregate the seed folders of `out` into summary.json and compare.png; returns the summary."""
    out = Path(out)
    results = load_seed_results(out)
    summary: dict = {"modes": MODES, "mode_std": MODE_STD, "samples": EVAL_SAMPLES, "min_mode_samples": MIN_MODE_SAMPLES,
                     "radii": list(RADII), "losses": {}}
    for loss, records in results.items():
        steps = records[0]["steps"]
        records = [r for r in records if r["steps"] == steps]  # seeds of runs with other step settings are left out
        per_radius = {}
        for r in map(str, RADII):
            per_radius[r] = {
                str(step): {
                    "modes_covered": spread([rec["modes_covered"][r][i] for rec in records]),
                    "high_quality": spread([rec["high_quality"][r][i] for rec in records]),
                    "all_modes_share": float(np.mean([rec["modes_covered"][r][i] == MODES for rec in records])),
                } for i, step in enumerate(steps)
            }
        run = _run_record(out, loss)
        summary["losses"][loss] = {"name": loss_name(out, loss), "seeds": [r["seed"] for r in records], "steps": steps,
                                   "loss_settings": run.get("config", {}).get("loss"),
                                   "seed_steps_per_s": run.get("seed_steps_per_s"), "by_radius": per_radius,
                                   "final_modes_covered_per_seed": {r: [rec["modes_covered"][r][-1] for rec in records]
                                                                    for r in map(str, RADII)}}
    write_json(summary, out / "summary.json")
    if results:
        names = {loss: loss_name(out, loss) for loss in results}
        title = (f"Mixture of {MODES} Gaussians (std {MODE_STD}): {' vs '.join(names.values())}; "
                 "circles: radius 0.1 around the modes")
        save_png(comparison_figure(out, results, names, LOSS_NAMES, title, mode_centres().numpy()), out / "compare.png")
    return summary


def _run_record(out: Path, loss: str) -> dict:
    run = out / loss / "run.json"
    return json.loads(run.read_text(encoding="utf-8")) if run.is_file() else {}


def loss_name(out: Path, loss: str) -> str:
    """The loss's name, with LSGAN's targets (the paper's 0-1 coding a=0, b=c=1, or e.g. a=-1, b=1, c=0)."""
    settings = _run_record(out, loss).get("config", {}).get("loss")
    if loss != "lsgan" or not settings:
        return LOSS_NAMES[loss]
    return f"{LOSS_NAMES[loss]} a={settings['a']:g} b={settings['b']:g} c={settings['c']:g}"
