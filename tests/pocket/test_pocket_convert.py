"""The pocket CLIP's text tower as a transformers CLIPTextModel: same function, same numbers."""

from __future__ import annotations

from pathlib import Path

import open_clip
import torch
from transformers import CLIPTextModel

from imagineer.pocket.convert import to_clip_text_model
from imagineer.pocket.models import ClipSpec, build_clip, encode_text_prefix
from imagineer.pocket.tokenizer import build_clip_tokenizer

TINY = ClipSpec(
    embed_dim=16,
    vision_width=32,
    vision_layers=1,
    vision_head_width=16,
    text_width=32,
    text_layers=2,
    text_heads=2,
)
CAPTIONS = ["a small red circle on the left, night, pixel art", "three stars", ""]


def _open_clip_hidden(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    x = model.token_embedding(ids) + model.positional_embedding
    return model.ln_final(model.transformer(x, attn_mask=model.attn_mask))


def test_last_hidden_state_equals_open_clip_ln_final(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_clip(TINY).eval()
    tokenizer = build_clip_tokenizer(tmp_path / "tokenizer")
    ids = tokenizer(CAPTIONS, padding="max_length", max_length=77, return_tensors="pt").input_ids
    converted = to_clip_text_model(model)
    converted.save_pretrained(str(tmp_path / "text_encoder"))
    reloaded = CLIPTextModel.from_pretrained(str(tmp_path / "text_encoder")).eval()
    with torch.inference_mode():
        expected = _open_clip_hidden(model, ids)
        assert torch.allclose(converted(ids).last_hidden_state, expected, atol=1e-5)
        assert torch.allclose(reloaded(ids).last_hidden_state, expected, atol=1e-5)
    assert reloaded.config.hidden_act == "gelu"  # open_clip's CLIP uses exact GELU by default


def test_quick_gelu_towers_convert_to_quick_gelu() -> None:
    torch.manual_seed(0)
    model = open_clip.CLIP(**TINY.model_cfg(), quick_gelu=True).eval()
    assert to_clip_text_model(model).config.hidden_act == "quick_gelu"


def test_prefix_encoding_equals_full_window() -> None:
    torch.manual_seed(0)
    model = build_clip(TINY).eval()
    tokens = open_clip.get_tokenizer("ViT-B-32")(CAPTIONS)
    with torch.inference_mode():
        full, prefix = model.encode_text(tokens), encode_text_prefix(model, tokens)
    assert torch.allclose(full, prefix, atol=1e-5)
