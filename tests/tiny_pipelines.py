"""Tiny Stable-Diffusion pipelines built from configs (no downloads), saved to disk.

Two variants of different cost: `light` (a narrow UNet, 2 steps) and `heavy` (a wider UNet,
6 steps). They generate noise-like 32x32 images; the point is exercising the real loading
and generation code of the diffusers executor.
"""

from __future__ import annotations

import json
from pathlib import Path

from hadis.profiles import ConfigRow, Direction, Metric, ModelVariant, Profile


def _byte_vocab() -> dict[str, int]:
    # GPT-2/CLIP byte-to-unicode table: every byte gets a printable character
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    chars = [chr(c) for c in cs]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in chars:
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    return vocab


def build_pipeline(path: Path, width: int, seed: int = 0) -> None:
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    tok_dir = path.parent / f"{path.name}-tokenizer-src"
    tok_dir.mkdir(parents=True, exist_ok=True)
    vocab = _byte_vocab()
    (tok_dir / "vocab.json").write_text(json.dumps(vocab))
    (tok_dir / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(
        str(tok_dir / "vocab.json"),
        str(tok_dir / "merges.txt"),
        pad_token="<|endoftext|>",
        model_max_length=16,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=8,
            intermediate_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=16,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            projection_dim=8,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(width, 2 * width),
        norm_num_groups=width // 2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=8,
        attention_head_dim=2,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(4, 8),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        norm_num_groups=2,
        sample_size=32,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(path, safe_serialization=True)


def tiny_profile(root: Path) -> Profile:
    """Build both pipelines under `root` and a profile that points at them."""
    build_pipeline(root / "light", width=4)
    build_pipeline(root / "heavy", width=16)
    models = (
        ModelVariant("light", str(root / "light"), 2, 0.0, (32, 32), 30.0, {1: 0.05}, 4),
        ModelVariant("heavy", str(root / "heavy"), 6, 0.0, (32, 32), 23.0, {1: 0.3}, 4),
    )
    rows = tuple(
        ConfigRow("light", "heavy", 0.0, d, d, q, 0.05 + d * 0.3)
        for d, q in ((0.0, 30.0), (0.5, 22.0), (1.0, 23.0))  # the mix beats heavy alone
    )
    return Profile("tiny", "cpu", Metric("FID", Direction.LOWER), models, rows)
