"""Train the demo pool's text-to-image models on the procedural world (CPU, seeded).

Each model is a `HadisDemoPipeline`: a word-level tokenizer, a small CLIP text encoder and
a UNet trained jointly with the epsilon-prediction DDPM loss on freshly rendered train-split
scenes (no example is seen twice), 10% of captions dropped for classifier-free guidance,
with an exponential moving average of the weights (what is saved). Images are denoised in a
space-to-depth layout (2x2 pixel patches as 12 channels at 16x16): the same Gaussian
pixel noise, a quarter of the spatial work.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler

from hadis.demo.pipeline import (
    MAX_TOKENS,
    HadisDemoPipeline,
    build_text_encoder,
    build_tokenizer,
    build_unet,
    sampling_scheduler,
)
from hadis.demo.world import example

Progress = Callable[[int, int, float], None]  # (step, steps, loss)


@dataclass(frozen=True)
class ModelSpec:
    """One demo model: UNet widths and training budget."""

    name: str
    channels: tuple[int, ...]
    steps: int
    batch: int = 32
    lr: float = 2e-3
    seed: int = 0
    image_size: int = 32
    patch: int = 2
    caption_dropout: float = 0.1
    ema_decay: float = 0.995
    # v-prediction: well-conditioned at every noise level, so few-step samplers stay sharp
    # (epsilon-prediction left grey, noisy images at this training budget)
    prediction: str = "v_prediction"
    min_snr: float = 5.0
    # backgrounds the model never sees in training: a concept gap (docs/router.md)
    unseen_backgrounds: tuple[str, ...] = ()


# The committed demo pool (scripts/gpu_demo_pool.py, docs/demo.md): a 1 M-parameter UNet
# that never saw a white background (the light model's concept gap, docs/router.md) and
# a 3.7 M-parameter one with attention at two resolutions that saw everything.
DEMO_MODELS = (
    ModelSpec("tiny", channels=(32, 64), steps=1800, batch=128, unseen_backgrounds=("white",)),
    ModelSpec("base", channels=(48, 96, 96), steps=2100, batch=128),
)


def _batch(spec: ModelSpec, step: int, tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [-1, 1] (B, 3, H, W) and token ids of the step's train-split examples."""
    images: list[np.ndarray] = []
    captions: list[str] = []
    index = step * spec.batch * 2  # train examples are ~80% of the stream: room to skip
    while len(images) < spec.batch:
        img, text, scene = example(spec.seed, index, spec.image_size)
        index += 1
        if scene.held_out or scene.background in spec.unseen_backgrounds:
            continue
        images.append(np.asarray(img, dtype=np.float32))
        captions.append(text)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2) / 127.5 - 1.0
    ids = tokenizer(
        captions, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt"
    )
    return x, ids.input_ids


class _StepBatches(torch.utils.data.Dataset):
    """Step i's batch (rendered in a loader worker: on a GPU, rendering is the bottleneck)."""

    def __init__(self, spec: ModelSpec, tokenizer) -> None:
        self.spec, self.tokenizer = spec, tokenizer

    def __len__(self) -> int:
        return self.spec.steps

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _batch(self.spec, step, self.tokenizer)


def _batches(spec: ModelSpec, tokenizer, workers: int):
    """Every step's batch in order: the same data whatever the number of workers."""
    if workers <= 0:
        return (_batch(spec, step, tokenizer) for step in range(spec.steps))
    return torch.utils.data.DataLoader(
        _StepBatches(spec, tokenizer),
        batch_size=None,
        num_workers=workers,
        prefetch_factor=4,
        generator=torch.Generator(),  # its own: the loader must not draw from the global RNG
    )


def portable_tokenizer(folder: Path) -> None:
    """Name the tokenizer class as transformers 4 and 5 both know it (5 writes its new
    `TokenizersBackend`, an alias of `PreTrainedTokenizerFast`)."""
    for file, key in (("model_index.json", "tokenizer"), ("tokenizer/tokenizer_config.json", None)):
        path = folder / file
        doc = json.loads(path.read_text())
        if key is None:
            doc["tokenizer_class"] = "PreTrainedTokenizerFast"
        else:
            doc[key] = ["transformers", "PreTrainedTokenizerFast"]
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def train_model(
    spec: ModelSpec,
    out: Path,
    device: str = "cpu",
    progress: Progress | None = None,
    workers: int = 0,
    max_seconds: float | None = None,
) -> dict:
    """Train one model and save it as a diffusers pipeline folder; returns a summary.
    `workers` render batches in background processes (same data, same weights);
    `max_seconds` stops early (a lent machine's time limit), recorded in the summary."""
    torch.manual_seed(spec.seed)
    rng = np.random.default_rng(spec.seed)
    tokenizer = build_tokenizer()
    text_encoder = build_text_encoder(len(tokenizer)).to(device)
    unet = build_unet(
        spec.channels,
        in_channels=3 * spec.patch**2,
        image_size=spec.image_size // spec.patch,
    ).to(device)
    modules = torch.nn.ModuleList([unet, text_encoder])
    ema = [p.detach().clone() for p in modules.parameters()]
    opt = torch.optim.AdamW(modules.parameters(), lr=spec.lr, betas=(0.9, 0.99))
    warmup = max(1, spec.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * (1 - s / spec.steps))
    )
    noise_sched = DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        prediction_type=spec.prediction,
    )
    # Min-SNR-5 loss weights (Hang et al. 2023): no noise level dominates the gradient
    snr = noise_sched.alphas_cumprod / (1 - noise_sched.alphas_cumprod)
    clipped = snr.clamp(max=spec.min_snr)
    weights = (clipped / (snr + 1) if spec.prediction == "v_prediction" else clipped / snr).to(
        device
    )
    empty = tokenizer(
        [""], padding="max_length", max_length=MAX_TOKENS, return_tensors="pt"
    ).input_ids
    start = time.perf_counter()
    losses = []
    for step, (x, ids) in enumerate(_batches(spec, tokenizer, workers)):
        drop = torch.from_numpy(rng.random(len(ids)) < spec.caption_dropout)
        ids = torch.where(drop[:, None], empty, ids)
        x0 = F.pixel_unshuffle(x, spec.patch).to(device)
        noise = torch.randn_like(x0)
        t = torch.randint(0, 1000, (len(x0),), device=device)
        xt = noise_sched.add_noise(x0, noise, t)
        attn = (ids != 0).long()
        cond = text_encoder(ids.to(device), attention_mask=attn.to(device)).last_hidden_state
        target = noise if spec.prediction == "epsilon" else noise_sched.get_velocity(x0, noise, t)
        err = (unet(xt, t, encoder_hidden_states=cond).sample - target).pow(2).mean((1, 2, 3))
        loss = (err * weights[t]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(modules.parameters(), 1.0)
        opt.step()
        sched.step()
        decay = min(spec.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema, modules.parameters(), strict=True):
                e.lerp_(p.detach(), 1 - decay)
        losses.append(loss.item())
        if progress is not None:
            progress(step + 1, spec.steps, float(np.mean(losses[-50:])))
        if max_seconds is not None and time.perf_counter() - start > max_seconds:
            break
    with torch.no_grad():
        for e, p in zip(ema, modules.parameters(), strict=True):
            p.copy_(e)
    pipe = HadisDemoPipeline(
        unet=unet.to("cpu"),
        text_encoder=text_encoder.to("cpu"),
        tokenizer=tokenizer,
        scheduler=sampling_scheduler(noise_sched.config),
        patch=spec.patch,
    )
    pipe.save_pretrained(out, safe_serialization=True)
    portable_tokenizer(Path(out))
    return {
        "name": spec.name,
        "parameters": sum(p.numel() for p in modules.parameters()),
        "train_seconds": round(time.perf_counter() - start, 1),
        "final_loss": round(float(np.mean(losses[-100:])), 4),
        "steps_done": len(losses),
    }
