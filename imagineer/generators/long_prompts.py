"""Prompts longer than a CLIP text encoder's window: count, chunk or cut, never silently.

CLIP text encoders read 77 tokens (75 plus start and end markers). Longer prompts are split into
75-token windows, each encoded on its own and concatenated along the sequence axis, which the
UNet's cross-attention reads as one longer context (the approach A1111 and compel popularised).
Where a pipeline cannot take embeddings (two text encoders, as in SDXL), the prompt is cut and the
cut text is recorded and logged.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import torch

from imagineer.generators.base import PromptWindow

logger = logging.getLogger(__name__)


def window_size(tokenizer: Any) -> int:
    """Tokens a text encoder reads per pass, without the start and end markers."""
    return int(tokenizer.model_max_length) - 2


def token_ids(tokenizer: Any, text: str) -> list[int]:
    """The prompt's token ids with no markers, no padding and no truncation."""
    return list(
        tokenizer(text, add_special_tokens=False, truncation=False, verbose=False).input_ids
    )


def measure(tokenizer: Any, text: str, chunked: bool) -> PromptWindow:
    """How ``text`` fits the tokenizer's window, and what is cut if it is not chunked."""
    ids = token_ids(tokenizer, text)
    window = window_size(tokenizer)
    chunks = max(1, -(-len(ids) // window))
    if chunked or chunks == 1:
        return PromptWindow(tokens=len(ids), window=window, chunks=chunks)
    cut = tokenizer.decode(ids[window:], skip_special_tokens=True).strip()
    return PromptWindow(tokens=len(ids), window=window, chunks=1, truncated=cut)


def supports_chunking(pipe: Any) -> bool:
    """Whether the pipeline has a single CLIP text encoder and accepts prompt embeddings."""
    params = set(inspect.signature(pipe.__call__).parameters)
    return (
        getattr(pipe, "text_encoder", None) is not None
        and getattr(pipe, "text_encoder_2", None) is None
        and "prompt_embeds" in params
        and "negative_prompt_embeds" in params
    )


@torch.inference_mode()
def encode_chunked(pipe: Any, text: str, chunks: int) -> torch.Tensor:
    """Encode ``text`` as ``chunks`` windows of the pipeline's own text encoder.

    Each window is ``[start] up to 75 tokens [end] [pad...]``, encoded separately; windows past
    the text's end hold the empty prompt, so positive and negative embeddings share a length.

    Returns:
        Embeddings of shape ``(1, chunks * 77, hidden)`` on the text encoder's device and dtype.
    """
    tokenizer, encoder = pipe.tokenizer, pipe.text_encoder
    ids = token_ids(tokenizer, text)
    window = window_size(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows, lengths = [], []
    for index in range(chunks):
        piece = ids[index * window : (index + 1) * window]
        row = [tokenizer.bos_token_id, *piece, tokenizer.eos_token_id]
        lengths.append(len(row))
        rows.append(row + [pad] * (window + 2 - len(row)))
    input_ids = torch.tensor(rows, device=encoder.device)
    mask = None
    if getattr(encoder.config, "use_attention_mask", False):
        mask = (torch.arange(window + 2) < torch.tensor(lengths)[:, None]).long().to(encoder.device)
    hidden = encoder(input_ids, attention_mask=mask)[0]
    return hidden.reshape(1, -1, hidden.shape[-1]).to(encoder.dtype)
