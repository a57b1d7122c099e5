"""Save trained pocket models in the formats the rest of imagineer loads with no special case.

* The scorer: open_clip's hub layout (``open_clip_config.json`` with ``model_cfg`` and
  ``preprocess_cfg``, ``open_clip_model.safetensors``), read by ``ClipScorer(dir)``.
* The generator: a diffusers ``StableDiffusionPipeline`` directory with the CLIP tokenizer built
  offline, an Euler scheduler on SD's betas and ``imagineer_defaults.json``, read by
  ``DiffusersGenerator``.

Weights are stored as fp16 safetensors to stay inside the repo's 40 MB budget; both loaders cast
them back to float32 on the CPU.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from imagineer.pocket.models import POCKET_CLIP_NAME, ClipSpec
from imagineer.pocket.paths import write_manifest
from imagineer.pocket.tokenizer import build_clip_tokenizer
from imagineer.pocket.train_clip import CLIP_MEAN, CLIP_STD
from imagineer.pocket.train_unet import BETA_END, BETA_START, TRAIN_TIMESTEPS

logger = logging.getLogger(__name__)


def export_scorer(model: Any, spec: ClipSpec, directory: Path) -> Path:
    """Write the CLIP in open_clip's hub layout (fp16 weights) and return ``directory``."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    model_cfg = spec.model_cfg()
    preprocess_cfg = {"size": spec.image_size, "mean": CLIP_MEAN, "std": CLIP_STD}
    hub = {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}
    (directory / "open_clip_config.json").write_text(json.dumps(hub, indent=2) + "\n")
    (directory / f"{POCKET_CLIP_NAME}.json").write_text(json.dumps(model_cfg, indent=2) + "\n")
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / "open_clip_model.safetensors"))
    write_manifest(directory)
    logger.info("exported the pocket scorer to %s", directory)
    return directory


def load_exported_scorer(directory: Path, spec: ClipSpec) -> Any:
    """The CLIP ``export_scorer`` wrote to ``directory``, upcast to fp32, for further training.

    Raises:
        ValueError: The export is not a model of ``spec`` (its ``model_cfg`` differs).
    """
    from safetensors.torch import load_file

    from imagineer.pocket.models import build_clip

    hub = json.loads((directory / "open_clip_config.json").read_text())
    if hub["model_cfg"] != spec.model_cfg():
        raise ValueError(f"{directory} is not this recipe's scorer (its model_cfg differs)")
    weights = load_file(str(directory / "open_clip_model.safetensors"))
    model = build_clip(spec)
    model.load_state_dict({k: v.float() for k, v in weights.items()})
    return model


def export_generator(
    text_encoder: Any, vae: Any, unet: Any, directory: Path, defaults: dict[str, Any]
) -> Path:
    """Write a ``StableDiffusionPipeline`` directory (fp16 weights) and return ``directory``."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    scheduler = EulerDiscreteScheduler(
        num_train_timesteps=TRAIN_TIMESTEPS,
        beta_start=BETA_START,
        beta_end=BETA_END,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        steps_offset=1,
        timestep_spacing="trailing",
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=build_clip_tokenizer(directory / "tokenizer"),
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.to(torch.float16).save_pretrained(  # type: ignore[attr-defined]
        str(directory), safe_serialization=True
    )
    pipe.to(torch.float32)  # type: ignore[attr-defined]
    (directory / "imagineer_defaults.json").write_text(json.dumps(defaults, indent=2) + "\n")
    write_manifest(directory)
    logger.info("exported the pocket generator to %s", directory)
    return directory
