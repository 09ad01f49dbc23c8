"""The demo pool's text-to-image pipeline: pixel-space diffusion with a text encoder.

`HadisDemoPipeline` is a diffusers `DiffusionPipeline` (save_pretrained / from_pretrained,
components listed in model_index.json) made of a word-level tokenizer
(`PreTrainedTokenizerFast`), a small `CLIPTextModel`, a `UNet2DConditionModel` that denoises
RGB pixels directly (the images are 32x32: no VAE needed) and a scheduler. Components are
built from configs here and trained by `hadis.demo.train`.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import (
    DiffusionPipeline,
    DPMSolverMultistepScheduler,
    ImagePipelineOutput,
    UNet2DConditionModel,
)
from PIL import Image
from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast

from hadis.demo.world import BACKGROUNDS, COLOURS, RELATIONS, SHAPES, SIZES

MAX_TOKENS = 32
SPECIAL = ("[PAD]", "[BOS]", "[EOS]", "[UNK]")
_WORDS = (
    ["a", "an", "the", "and", "of", "on", "two", "shapes", "picture", "simple", "drawing"]
    + ["centered", "background", ",", ":"]
    + [w for r in RELATIONS for w in r.split()]
    + list(SHAPES)
    + list(COLOURS)
    + list(BACKGROUNDS)
    + list(SIZES)
)


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer over the world's vocabulary (lower-cased; other words -> [UNK])."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel

    vocab: dict[str, int] = {}
    for w in (*SPECIAL, *_WORDS):
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]", special_tokens=[("[BOS]", 1), ("[EOS]", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        bos_token="[BOS]",
        eos_token="[EOS]",
        unk_token="[UNK]",
        model_max_length=MAX_TOKENS,
    )


def build_text_encoder(vocab_size: int, hidden: int = 64, layers: int = 2) -> CLIPTextModel:
    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=4,
            max_position_embeddings=MAX_TOKENS,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            projection_dim=hidden,
        )
    )


def build_unet(
    channels: tuple[int, ...], in_channels: int = 12, image_size: int = 16, cross_dim: int = 64
) -> UNet2DConditionModel:
    """A UNet: plain blocks at full resolution, text cross-attention at the lower ones."""
    n = len(channels)
    return UNet2DConditionModel(
        sample_size=image_size,
        in_channels=in_channels,
        out_channels=in_channels,
        layers_per_block=1,
        block_out_channels=channels,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        norm_num_groups=8,
        cross_attention_dim=cross_dim,
        attention_head_dim=8,
    )


class HadisDemoPipeline(DiffusionPipeline):
    """Text -> 32x32 RGB image by denoising pixels, with classifier-free guidance."""

    model_cpu_offload_seq = "text_encoder->unet"

    def __init__(self, unet, text_encoder, tokenizer, scheduler, patch: int = 2) -> None:
        super().__init__()
        self.register_modules(
            unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler
        )
        # the UNet sees patch x patch pixel blocks as channels (space-to-depth)
        self.register_to_config(patch=patch)

    @property
    def image_size(self) -> int:
        return self.unet.config.sample_size * self.config.patch

    def encode(self, prompts: list[str]) -> torch.Tensor:
        ids = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=MAX_TOKENS,
            truncation=True,
            return_tensors="pt",
        )
        device = self.unet.device
        return self.text_encoder(
            ids.input_ids.to(device), attention_mask=ids.attention_mask.to(device)
        ).last_hidden_state

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        num_inference_steps: int = 20,
        guidance_scale: float = 0.0,
        height: int | None = None,
        width: int | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
    ):
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        size = self.image_size
        if (height or size) != size or (width or size) != size:
            raise ValueError(f"this pipeline generates {size}x{size} images only")
        n = len(prompts)
        gens = generator if isinstance(generator, list) else [generator] * n
        device, dtype = self.unet.device, self.unet.dtype
        x = torch.stack(
            [torch.randn((3, size, size), generator=g, dtype=torch.float32) for g in gens]
        )
        x = torch.nn.functional.pixel_unshuffle(x, self.config.patch).to(device, dtype)
        cfg = guidance_scale > 1.0
        cond = self.encode(prompts)
        if cfg:
            cond = torch.cat([self.encode([""] * n), cond])
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        x = x * self.scheduler.init_noise_sigma
        for t in self.scheduler.timesteps:
            inp = torch.cat([x, x]) if cfg else x
            inp = self.scheduler.scale_model_input(inp, t)
            eps = self.unet(inp, t, encoder_hidden_states=cond).sample
            if cfg:
                uncond, text = eps.chunk(2)
                eps = uncond + guidance_scale * (text - uncond)
            x = self.scheduler.step(eps, t, x).prev_sample
        x = torch.nn.functional.pixel_shuffle(x.float(), self.config.patch)
        pixels = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        arr = pixels.permute(0, 2, 3, 1).cpu().numpy()
        images = [Image.fromarray(a) for a in arr] if output_type == "pil" else np.asarray(arr)
        if not return_dict:
            return (images,)
        return ImagePipelineOutput(images=images)


def sampling_scheduler(train_scheduler_config: dict) -> DPMSolverMultistepScheduler:
    """Few-step DPM-Solver++ over the training noise schedule. Pixel-space models need the
    x0 predictions clipped (dynamic thresholding to [-1, 1]): at the cosine schedule's last
    steps x0 = (x - sigma * eps) / alpha divides by an alpha near 0 and would explode."""
    return DPMSolverMultistepScheduler.from_config(
        train_scheduler_config,
        algorithm_type="dpmsolver++",
        thresholding=True,
        sample_max_value=1.0,
        timestep_spacing="trailing",
    )
