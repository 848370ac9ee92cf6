"""A tiny random Stable Diffusion pipeline (model id ``tiny-random``) for smoke runs, CI and tests.

Built the way diffusers' own pipeline tests build their dummy components: a 2-block UNet with
``block_out_channels=(4, 8)``, a 2-block VAE, a 2-layer CLIP text model of hidden size 8 and a
character-level CLIP tokenizer made in memory, so nothing is downloaded. The weights are random
(seeded), so images are coloured noise; what matters is that every code path of a real SD 1.5
pipeline runs (text encoding, classifier-free guidance, schedulers, VAE decode, LoRA loading).

Sizes: ~20k parameters in all; a 32x32 image with 2 steps takes ~10 ms of compute on one CPU core.
The VAE downsamples by 2 (one down block), so a 32 px image is a 16x16x4 latent.
"""

from __future__ import annotations

from typing import Any

TINY_MODEL_ID = "tiny-random"
TINY_XL_MODEL_ID = "tiny-random-xl"

# The CLIP byte-level alphabet (GPT-2's bytes_to_unicode): 256 printable stand-ins for the 256 byte
# values. With no BPE merges every character is one token, so the window is 320 tokens instead of
# CLIP's 77: the grid's prompts are ~220 characters and the emotion phrase sits past character 130,
# so a 77-character window would give every emotion the same conditioning.
MAX_TOKENS = 320
_SPECIAL = ["<|startoftext|>", "<|endoftext|>"]


def _byte_alphabet() -> list[str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def tiny_tokenizer() -> Any:
    """A ``CLIPTokenizer`` whose vocabulary is the 256 byte characters (each also with the
    ``</w>`` end-of-word suffix) plus the two CLIP special tokens: 514 ids, no merges, no files,
    ``MAX_TOKENS`` characters per prompt."""
    from transformers import CLIPTokenizer

    alphabet = _byte_alphabet()
    vocab = {tok: i for i, tok in enumerate(_SPECIAL)}
    for ch in alphabet:
        vocab[ch] = len(vocab)
    for ch in alphabet:
        vocab[ch + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=MAX_TOKENS)


def _tiny_vae(seed: int) -> Any:
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        block_out_channels=(4, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=2,
        sample_size=32,
    )


def _tiny_text_config(tokenizer: Any) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        hidden_size=8,
        intermediate_size=16,
        num_attention_heads=2,
        num_hidden_layers=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=MAX_TOKENS,
        projection_dim=8,
    )


def _sd15_scheduler() -> Any:
    # SD 1.5's own scheduler settings (scaled_linear betas 0.00085..0.012, steps_offset 1), so
    # schedulers swapped in by name behave as they do on a real checkpoint.
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


#: UNet layout shared by the SD 1.5 and SDXL tiny pipelines (diffusers' test components).
_TINY_UNET: dict[str, Any] = {
    "block_out_channels": (4, 8),
    "layers_per_block": 1,
    "sample_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
}


def tiny_pipeline(seed: int = 0) -> Any:
    """Build the tiny random ``StableDiffusionPipeline`` (fp32, CPU, no safety checker).

    The same ``seed`` gives bit-identical weights, so a LoRA trained on ``tiny_pipeline(0)`` loads
    back into a fresh ``tiny_pipeline(0)``.
    """
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        **_TINY_UNET,
        cross_attention_dim=8,
        attention_head_dim=2,
        norm_num_groups=2,
    )
    vae = _tiny_vae(seed + 1)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(_tiny_text_config(tokenizer))
    return StableDiffusionPipeline(
        unet=unet.eval(),
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        scheduler=_sd15_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def tiny_sdxl_pipeline(seed: int = 0) -> Any:
    """The SDXL counterpart (``tiny-random-xl``): two text encoders (hidden size 8 each, the second
    with a pooled projection), a UNet with SDXL's ``text_time`` conditioning, no watermarker.
    Exercises the SDXL code path (size/crop conditioning, dual prompts) without weights."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        **_TINY_UNET,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        # 6 size/crop ids x 8 + the second encoder's pooled projection (8)
        projection_class_embeddings_input_dim=6 * 8 + 8,
        cross_attention_dim=16,  # both encoders' hidden states concatenated: 8 + 8
        norm_num_groups=2,
    )
    vae = _tiny_vae(seed + 1)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(_tiny_text_config(tokenizer))
    text_encoder_2 = CLIPTextModelWithProjection(_tiny_text_config(tokenizer))
    scheduler = EulerDiscreteScheduler.from_config(_sd15_scheduler().config)
    return StableDiffusionXLPipeline(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        text_encoder_2=text_encoder_2.eval(),
        tokenizer=tokenizer,
        tokenizer_2=tiny_tokenizer(),
        unet=unet.eval(),
        scheduler=scheduler,
        add_watermarker=False,
    )


TINY_MODELS = {TINY_MODEL_ID: tiny_pipeline, TINY_XL_MODEL_ID: tiny_sdxl_pipeline}
