"""CLIP scoring with open_clip: one batched image pass, text embeddings cached by string.

Models are named the way open_clip names them: ``ViT-B-32:laion2b_s34b_b79k`` (architecture and
pretrained tag), ``ViT-B-32:/path/to/weights.safetensors`` (architecture and a checkpoint),
``hf-hub:org/repo``, or a local directory in open_clip's hub layout (``open_clip_config.json``
beside ``open_clip_model.safetensors``), which is how the bundled pocket scorer ships.
"""

from __future__ import annotations

import difflib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from imagineer.errors import CorruptWeights, InvalidInput, ModelNotAvailable
from imagineer.scoring.base import ImageScore, Scorer

logger = logging.getLogger(__name__)

CLIPSCORE_WEIGHT = 2.5  # w in CLIPScore = w * max(cos, 0), Hessel et al. 2021


class ClipScorerConfig(BaseModel):
    """Per-component knobs of `ClipScorer`; recorded with every run.

    Example:
        >>> ClipScorerConfig(model="ViT-B-32:laion2b_s34b_b79k")
    """

    model_config = ConfigDict(protected_namespaces=())

    model: str = Field(description="'ARCH:TAG', 'ARCH:/checkpoint', 'hf-hub:org/repo' or a dir.")
    model_config_file: str | None = Field(
        None, description="An open_clip model config JSON to register first (add_model_config)."
    )
    device: str | None = Field(None, description="'cuda', 'mps' or 'cpu'; best available if None.")
    batch_size: int = Field(256, ge=1, description="Images per forward pass, to bound memory.")


@dataclass
class LoadedClip:
    """An open_clip model with its preprocessing, tokenizer and text-embedding cache."""

    model: Any
    preprocess: Any
    tokenizer: Any
    device: torch.device
    text_cache: dict[str, torch.Tensor] = field(default_factory=dict)
    texts_encoded: int = 0
    image_batches: int = 0


_MODELS: dict[tuple[str, str | None, str], LoadedClip] = {}
_MODELS_LOCK = threading.Lock()


def _pick_device(requested: str | None) -> torch.device:
    if requested:
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("mps") if torch.backends.mps.is_available() else torch.device("cpu")


def resolve_model(spec: str) -> tuple[str, str | None]:
    """Split a model spec into open_clip's ``(model_name, pretrained)`` arguments.

    Raises:
        InvalidInput: The architecture or the tag is unknown to open_clip.
        ModelNotAvailable: A local directory or checkpoint path does not exist.
    """
    import open_clip

    if spec.startswith(("hf-hub:", "local-dir:")):
        return spec, None
    if Path(spec).expanduser().is_dir():
        return f"local-dir:{Path(spec).expanduser()}", None
    if spec.startswith((".", "/", "~")):
        raise ModelNotAvailable(spec, [spec], "No such directory.")
    name, _, pretrained = spec.partition(":")
    if name not in open_clip.list_models():
        close = difflib.get_close_matches(name, open_clip.list_models(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise InvalidInput(f"unknown open_clip model {name!r}{hint}")
    if not pretrained:
        raise InvalidInput(
            f"{spec!r} names no weights; use {name}:TAG with a tag from "
            f"{open_clip.list_pretrained_tags_by_model(name)} or {name}:/path/to/checkpoint"
        )
    looks_like_path = "/" in pretrained or pretrained.endswith((".safetensors", ".bin", ".pt"))
    if looks_like_path:
        if not Path(pretrained).expanduser().is_file():
            raise ModelNotAvailable(spec, [pretrained], "No such checkpoint file.")
        return name, str(Path(pretrained).expanduser())
    tags = open_clip.list_pretrained_tags_by_model(name)
    if pretrained not in tags:
        raise InvalidInput(f"unknown tag {pretrained!r} for {name}; known tags: {tags}")
    return name, pretrained


def load_clip(config: ClipScorerConfig) -> LoadedClip:
    """Load (or reuse) the open_clip model for ``config``, once per process."""
    import open_clip

    if config.model_config_file:
        open_clip.add_model_config(config.model_config_file)
    name, pretrained = resolve_model(config.model)
    device = _pick_device(config.device)
    key = (name, pretrained, str(device))
    with _MODELS_LOCK:
        if key in _MODELS:
            return _MODELS[key]
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=pretrained, device=device
            )
        except RuntimeError as error:
            if "download" in str(error).lower():
                raise ModelNotAvailable(
                    config.model,
                    ["the HF cache", "open_clip's cache"],
                    "Its weights are not cached and the hub is unreachable; copy them from a "
                    "connected machine, pass ARCH:/path/to/checkpoint, or use the pocket scorer.",
                ) from error
            raise CorruptWeights(f"cannot load {config.model!r}: {error}") from error
        except Exception as error:  # safetensors, JSON and shape errors from a bad checkpoint
            raise CorruptWeights(f"cannot load {config.model!r}: {error}") from error
        model.eval()
        loaded = LoadedClip(model, preprocess, open_clip.get_tokenizer(name), device)
        logger.info("loaded open_clip %s (%s) on %s", name, pretrained, device)
        _MODELS[key] = loaded
        return loaded


class ClipScorer(Scorer):
    """Scores images with an open_clip model: raw cosine, CLIPScore and per-concept cosines.

    Example:
        >>> scorer = ClipScorer("ViT-B-32:laion2b_s34b_b79k")
        >>> scores = scorer.score(images, "a fox in the snow", concepts=["fox", "snow"])
    """

    name = "open_clip"

    def __init__(self, config: ClipScorerConfig | str) -> None:
        self.config = ClipScorerConfig(model=config) if isinstance(config, str) else config
        self._loaded: LoadedClip | None = None

    @property
    def loaded(self) -> LoadedClip:
        """The model, loaded on first use and shared by every scorer of the same config."""
        if self._loaded is None:
            self._loaded = load_clip(self.config)
        return self._loaded

    @property
    def texts_encoded(self) -> int:
        """How many distinct strings this model has run through its text tower so far."""
        return self.loaded.texts_encoded

    def score(
        self,
        images: Sequence[Image.Image],
        text: str | Sequence[str],
        concepts: Sequence[str] = (),
        foils: Sequence[str] = (),
    ) -> list[ImageScore]:
        """See `Scorer.score`; all images go through the image tower in one batched pass.

        ``contrast`` is the softmax, at the model's own logit scale (its zero-shot temperature),
        of the image's cosines with ``[text, *foils]``, read at ``text``.
        """
        # 1. Check inputs
        texts = _check_texts(images, text)
        concepts, foils = list(dict.fromkeys(concepts)), list(dict.fromkeys(foils))
        for kind, phrases in (("concept", concepts), ("foil", foils)):
            if any(not phrase.strip() for phrase in phrases):
                raise InvalidInput(f"{kind} phrases must be non-empty")
        # 2. Embed: images in one pass, texts from the cache (new strings in one pass)
        image_emb = self.embed_images(images)
        keys = list(dict.fromkeys([*texts, *concepts, *foils]))
        text_emb = self.embed_texts(keys)
        lookup = {t: i for i, t in enumerate(keys)}
        # 3. Cosines, CLIPScore, per-concept scores and contrast from the same embeddings
        cos = (image_emb @ text_emb.T).clamp(-1.0, 1.0)
        contrast = self._contrast(cos, [lookup[t] for t in texts], [lookup[f] for f in foils])
        values = cos.tolist()
        return [
            ImageScore(
                cosine=values[i][lookup[texts[i]]],
                clip_score=CLIPSCORE_WEIGHT * max(values[i][lookup[texts[i]]], 0.0),
                concepts={phrase: values[i][lookup[phrase]] for phrase in concepts},
                contrast=contrast[i] if contrast is not None else None,
            )
            for i in range(len(images))
        ]

    def _contrast(self, cos: torch.Tensor, own: list[int], foils: list[int]) -> list[float] | None:
        """Per image: softmax over its text and the foils (foils equal to it left out)."""
        if not foils:
            return None
        scale = float(self.loaded.model.logit_scale.exp().clamp(max=100))
        out = []
        for i, index in enumerate(own):
            others = [f for f in foils if f != index]
            logits = scale * cos[i, [index, *others]]
            out.append(float(torch.softmax(logits, dim=0)[0]))
        return out

    @torch.inference_mode()
    def embed_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Unit-norm image embeddings, shape ``(len(images), dim)``."""
        clip = self.loaded
        pixels = torch.stack([clip.preprocess(im.convert("RGB")) for im in images])
        parts = [
            clip.model.encode_image(pixels[i : i + self.config.batch_size].to(clip.device))
            for i in range(0, len(pixels), self.config.batch_size)
        ]
        clip.image_batches += len(parts)
        return torch.nn.functional.normalize(torch.cat(parts).float(), dim=-1)

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Unit-norm text embeddings, shape ``(len(texts), dim)``, cached by exact string."""
        clip = self.loaded
        missing = [t for t in dict.fromkeys(texts) if t not in clip.text_cache]
        if missing:
            tokens = clip.tokenizer(missing).to(clip.device)
            encoded = torch.nn.functional.normalize(clip.model.encode_text(tokens).float(), dim=-1)
            clip.text_cache.update(zip(missing, encoded, strict=True))
            clip.texts_encoded += len(missing)
        return torch.stack([clip.text_cache[t] for t in texts])


def _check_texts(images: Sequence[Image.Image], text: str | Sequence[str]) -> list[str]:
    if not images:
        raise InvalidInput("no images to score")
    texts = [text] * len(images) if isinstance(text, str) else list(text)
    if len(texts) != len(images):
        raise InvalidInput(f"got {len(texts)} texts for {len(images)} images")
    for value in texts:
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"text must be non-empty, got {value!r}")
    return texts
