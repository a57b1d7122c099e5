"""Turn an open_clip text tower into a transformers ``CLIPTextModel`` (the SD text encoder).

The pocket generator conditions on the pocket scorer's own text tower, frozen, as Stable
Diffusion conditions on a frozen contrastive CLIP text encoder: attributes the contrastive loss
taught the tower to tell apart (colour, position, binding) arrive in the UNet already separated.
The two implementations compute the same function; only parameter names and the fused
attention projection differ, so the conversion is a renaming plus a split of ``in_proj``.
"""

from __future__ import annotations

from typing import Any

import torch


def text_config(model: Any) -> Any:
    """The ``CLIPTextConfig`` matching an open_clip model's text tower."""
    from transformers import CLIPTextConfig

    width = model.token_embedding.weight.shape[1]
    block = model.transformer.resblocks[0]
    gelu = type(block.mlp.gelu).__name__
    return CLIPTextConfig(
        vocab_size=model.token_embedding.weight.shape[0],
        hidden_size=width,
        intermediate_size=block.mlp.c_fc.out_features,
        projection_dim=model.text_projection.shape[1],
        num_hidden_layers=len(model.transformer.resblocks),
        num_attention_heads=block.attn.num_heads,
        max_position_embeddings=model.positional_embedding.shape[0],
        hidden_act="quick_gelu" if gelu == "QuickGELU" else "gelu",
        layer_norm_eps=model.ln_final.eps,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
    )


def text_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """open_clip text-tower weights under ``CLIPTextModel``'s parameter names."""
    state: dict[str, torch.Tensor] = {
        "text_model.embeddings.token_embedding.weight": model.token_embedding.weight,
        "text_model.embeddings.position_embedding.weight": model.positional_embedding,
        "text_model.final_layer_norm.weight": model.ln_final.weight,
        "text_model.final_layer_norm.bias": model.ln_final.bias,
    }
    for index, block in enumerate(model.transformer.resblocks):
        prefix = f"text_model.encoder.layers.{index}."
        q, k, v = block.attn.in_proj_weight.chunk(3, dim=0)
        qb, kb, vb = block.attn.in_proj_bias.chunk(3, dim=0)
        for name, weight, bias in (("q_proj", q, qb), ("k_proj", k, kb), ("v_proj", v, vb)):
            state[prefix + f"self_attn.{name}.weight"] = weight
            state[prefix + f"self_attn.{name}.bias"] = bias
        pairs = {
            "self_attn.out_proj": block.attn.out_proj,
            "layer_norm1": block.ln_1,
            "layer_norm2": block.ln_2,
            "mlp.fc1": block.mlp.c_fc,
            "mlp.fc2": block.mlp.c_proj,
        }
        for name, module in pairs.items():
            state[prefix + name + ".weight"] = module.weight
            state[prefix + name + ".bias"] = module.bias
    return {name: tensor.detach().clone().contiguous() for name, tensor in state.items()}


def to_clip_text_model(model: Any) -> Any:
    """A ``CLIPTextModel`` whose ``last_hidden_state`` equals open_clip's ``ln_final`` output.

    Args:
        model: An open_clip ``CLIP`` (non-custom text tower, pre-norm, causal).

    Returns:
        The transformers model, in eval mode and float32.

    Raises:
        ValueError: Weights are missing or left over (an open_clip layout this does not know).
    """
    from transformers import CLIPTextModel

    text_model = CLIPTextModel(text_config(model))
    state = text_state_dict(model)
    if not any(key.startswith("text_model.") for key in text_model.state_dict()):
        # transformers 5 keeps the layers on CLIPTextModel itself (it maps the prefix on load).
        state = {key.removeprefix("text_model."): value for key, value in state.items()}
    missing, unexpected = text_model.load_state_dict(state, strict=False)
    missing = [name for name in missing if not name.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"text tower conversion: missing {missing}, unexpected {unexpected}")
    return text_model.eval()
