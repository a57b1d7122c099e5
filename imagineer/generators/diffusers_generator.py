"""Local rendering with any diffusers text-to-image pipeline (SD 1.x/2.x, SD-Turbo, SDXL, pocket).

The pipeline is loaded once per process through ``AutoPipelineForText2Image.from_pretrained``,
exactly as a user would load it, with safetensors only and no remote code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from imagineer.errors import CorruptWeights, InvalidInput, ModelNotAvailable, UnknownScheduler
from imagineer.generators.base import (
    MAX_SEED,
    Candidate,
    Generator,
    PromptWindow,
    Region,
    RenderParams,
    StepCallback,
    derive_seeds,
)
from imagineer.generators.long_prompts import encode_chunked, measure, supports_chunking
from imagineer.generators.regions import DEFAULT_BASE, region_weights, regional_attention

logger = logging.getLogger(__name__)

DType = Literal["float32", "float16", "bfloat16"]

# Scheduler names users type, mapped to a diffusers class and the options that make it that sampler.
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "dpmpp_2m_karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True},
    ),
    "ddim": ("DDIMScheduler", {}),
    "lcm": ("LCMScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
}
_SCHEDULER_ALIASES = {
    "euler_ancestral": "euler_a",
    "k_euler": "euler",
    "k_euler_a": "euler_a",
    "dpm++_2m": "dpmpp_2m",
    "dpm++_2m_karras": "dpmpp_2m_karras",
    "dpmsolver++": "dpmpp_2m",
}
# The file a model directory may ship with its recommended per-call defaults (steps, guidance...).
RENDER_DEFAULTS_FILE = "imagineer_defaults.json"
_DEFAULT_STEPS = 25
_DEFAULT_GUIDANCE = 7.0


def scheduler_names() -> list[str]:
    """Scheduler names `DiffusersGenerator` accepts (aliases such as 'euler_ancestral' too)."""
    return sorted(SCHEDULERS)


def canonical_scheduler(name: str) -> str:
    """Normalise a scheduler name ('Euler-A', 'DPM++ 2M') to imagineer's name for it."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = _SCHEDULER_ALIASES.get(key, key)
    if key not in SCHEDULERS:
        raise UnknownScheduler(
            f"unknown scheduler {name!r}; choose one of {', '.join(scheduler_names())}"
        )
    return key


class DiffusersConfig(BaseModel):
    """Per-component knobs of `DiffusersGenerator`; recorded with every run.

    Example:
        >>> DiffusersConfig(model="stabilityai/sd-turbo", steps=1, guidance=0.0)
    """

    model_config = ConfigDict(protected_namespaces=())

    model: str = Field(description="Hub id (e.g. 'stabilityai/sd-turbo') or a local directory.")
    revision: str | None = Field(None, description="Hub branch, tag or commit.")
    variant: str | None = Field(None, description="Weight variant on the hub, e.g. 'fp16'.")
    device: str | None = Field(None, description="'cuda', 'mps', 'cpu'; best available if None.")
    dtype: DType | None = Field(None, description="fp16 on CUDA/MPS, fp32 on CPU if None.")
    steps: int | None = Field(None, ge=1, le=1000, description="Default denoising steps.")
    guidance: float | None = Field(None, ge=0.0, le=50.0, description="Default CFG scale.")
    scheduler: str | None = Field(None, description="Default scheduler; the model's own if None.")
    long_prompts: Literal["chunk", "truncate"] = Field(
        "chunk",
        description="Prompts over the token window: encode in windows ('chunk', where the "
        "pipeline has one text encoder) or cut them, recording and logging what was cut.",
    )
    local_files_only: bool = Field(
        False, description="Never try the hub, even when HF_HUB_OFFLINE is unset."
    )
    region_base: float = Field(
        DEFAULT_BASE,
        ge=0.0,
        le=1.0,
        description="With regional prompts: the weight the whole prompt keeps inside regions.",
    )


def pick_device(requested: str | None) -> torch.device:
    """The requested device, or the best one available (CUDA, then MPS, then CPU)."""
    if requested:
        try:
            return torch.device(requested)
        except RuntimeError as error:
            raise InvalidInput(f"unknown device {requested!r}: {error}") from error
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, requested: DType | None) -> torch.dtype:
    """The requested dtype, else half precision on accelerators and fp32 on the CPU."""
    if requested:
        return getattr(torch, requested)
    return torch.float16 if device.type in ("cuda", "mps") else torch.float32


# One pipeline per (model, revision, variant, device, dtype) per process: loading is seconds to
# minutes, and chat turns and batch items must reuse it.
_PIPELINES: dict[tuple[str, ...], tuple[Any, str | None]] = {}
_PIPELINES_LOCK = threading.Lock()
_LOADS = {"count": 0}


def pipeline_loads() -> int:
    """How many pipelines this process has loaded from disk (for tests and diagnostics)."""
    return _LOADS["count"]


def clear_pipeline_cache() -> None:
    """Forget every loaded pipeline (frees memory; the next render loads again)."""
    with _PIPELINES_LOCK:
        _PIPELINES.clear()


def _is_path_like(model: str) -> bool:
    return model.startswith((".", "/", "~")) or os.sep in model.strip("/").split("/", 2)[-1]


def _fingerprint(directory: Path) -> str:
    """A content fingerprint of a local model directory, cheap even for multi-GB weights.

    Configs are hashed whole; each weight file by its size and its first and last MiB, which
    differ between any two trained checkpoints of the same architecture.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if path.suffix not in (".json", ".txt", ".safetensors"):
            continue
        digest.update(str(path.relative_to(directory)).encode())
        size = path.stat().st_size
        digest.update(str(size).encode())
        with path.open("rb") as handle:
            digest.update(handle.read(1 << 20))
            if size > 2 << 20:
                handle.seek(-(1 << 20), os.SEEK_END)
                digest.update(handle.read())
    return "sha256-fp:" + digest.hexdigest()[:16]


def _hub_revision(model: str, revision: str | None) -> str | None:
    """The commit hash of a cached hub snapshot, read from its cache path."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(model, "model_index.json", revision=revision)
    if isinstance(found, str) and "/snapshots/" in found:
        return found.split("/snapshots/")[1].split("/")[0]
    return revision


def _load_local(directory: Path, kwargs: dict[str, Any]) -> Any:
    from diffusers import AutoPipelineForText2Image

    if not (directory / "model_index.json").is_file():
        raise InvalidInput(
            f"{str(directory)!r} is not a diffusers pipeline directory (no model_index.json); "
            "pass a directory saved with save_pretrained or a hub id"
        )
    try:
        return AutoPipelineForText2Image.from_pretrained(
            str(directory), local_files_only=True, **kwargs
        )
    except Exception as error:  # diffusers raises many types for a bad file; report them as one
        raise CorruptWeights(
            f"could not load the pipeline in {str(directory)!r}: {error}. Check that every "
            "component has its config and .safetensors weights; rebuild or re-download it"
        ) from error


def _load_hub(config: DiffusersConfig, kwargs: dict[str, Any]) -> Any:
    from diffusers import AutoPipelineForText2Image
    from huggingface_hub import constants

    offline = config.local_files_only or constants.HF_HUB_OFFLINE
    try:
        return AutoPipelineForText2Image.from_pretrained(
            config.model, local_files_only=True, **kwargs
        )
    except Exception as cache_miss:  # not (fully) in the HF cache
        if offline:
            raise _not_available(config.model, "offline mode is on") from cache_miss
        logger.info("%s is not in the HF cache; trying the hub", config.model)
    try:
        return AutoPipelineForText2Image.from_pretrained(config.model, **kwargs)
    except Exception as error:
        raise _not_available(config.model, "the hub is unreachable or refused") from error


def _not_available(model: str, why: str) -> ModelNotAvailable:
    from huggingface_hub import constants

    return ModelNotAvailable(
        model,
        [f"the local path {model!r}", f"the HF cache {constants.HF_HUB_CACHE}"],
        f"It is not cached and {why}. Download it on a connected machine "
        "(huggingface-cli download MODEL) and copy the cache, pass a local directory, "
        "or use the bundled pocket model.",
    )


def load_pipeline(config: DiffusersConfig) -> tuple[Any, str | None]:
    """Load (or reuse) the pipeline for ``config``.

    Returns:
        The pipeline on its device and dtype, and its revision (hub commit or fingerprint).

    Raises:
        ModelNotAvailable: The model is neither a local directory nor in the HF cache, and the
            hub cannot be reached.
        CorruptWeights: A local directory exists but a file in it cannot be read.
    """
    device = pick_device(config.device)
    dtype = pick_dtype(device, config.dtype)
    key = (config.model, str(config.revision), str(config.variant), str(device), str(dtype))
    with _PIPELINES_LOCK:
        if key in _PIPELINES:
            return _PIPELINES[key]
        kwargs: dict[str, Any] = {"dtype": dtype, "use_safetensors": True}
        if config.revision:
            kwargs["revision"] = config.revision
        if config.variant:
            kwargs["variant"] = config.variant
        directory = Path(config.model).expanduser()
        revision: str | None
        if directory.is_dir():
            pipe, revision = _load_local(directory, kwargs), _fingerprint(directory)
        elif _is_path_like(config.model):
            raise ModelNotAvailable(config.model, [str(directory)], "No such directory.")
        else:
            pipe = _load_hub(config, kwargs)
            revision = _hub_revision(config.model, config.revision)
        pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        _LOADS["count"] += 1
        logger.info("loaded %s (%s) on %s as %s", config.model, revision, device, dtype)
        _PIPELINES[key] = (pipe, revision)
        return pipe, revision


def _read_render_defaults(model: str) -> dict[str, Any]:
    path = Path(model).expanduser() / RENDER_DEFAULTS_FILE
    if not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError) as error:
        raise CorruptWeights(f"cannot read {str(path)!r}: {error}") from error


class DiffusersGenerator(Generator):
    """Renders candidates with a local diffusers text-to-image pipeline.

    Example:
        >>> gen = DiffusersGenerator(DiffusersConfig(model="stabilityai/sd-turbo"))
        >>> [c.params.seed for c in gen.render("a fox in the snow", n=4, seed=1)]
    """

    name = "diffusers"

    def __init__(self, config: DiffusersConfig | str) -> None:
        self.config = DiffusersConfig(model=config) if isinstance(config, str) else config
        if self.config.scheduler:
            canonical_scheduler(self.config.scheduler)
        self._defaults = _read_render_defaults(self.config.model)
        self._schedulers: dict[str, Any] = {}

    @property
    def pipeline(self) -> Any:
        """The loaded pipeline (loaded on first use, then shared by the whole process)."""
        return load_pipeline(self.config)[0]

    @property
    def revision(self) -> str | None:
        """Hub commit or content fingerprint of the loaded weights."""
        return load_pipeline(self.config)[1]

    @property
    def supports_regions(self) -> bool:
        """Regional prompts need one text encoder and a pipeline that takes embeddings."""
        return supports_chunking(self.pipeline)

    def default(self, knob: str) -> Any:
        """A per-call default: the config's value, else the model's recommendation, else ours."""
        fallback = {"steps": _DEFAULT_STEPS, "guidance": _DEFAULT_GUIDANCE}.get(knob)
        value = getattr(self.config, knob, None)
        return value if value is not None else self._defaults.get(knob, fallback)

    def render(
        self,
        prompt: str | Sequence[str],
        negative_prompt: str | Sequence[str] = "",
        *,
        n: int | None = None,
        seed: int = 0,
        seeds: Sequence[int] | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        width: int | None = None,
        height: int | None = None,
        scheduler: str | None = None,
        progress: StepCallback | None = None,
        regions: Sequence[Sequence[Region]] | None = None,
    ) -> list[Candidate]:
        """Render ``n`` candidates per prompt in as few pipeline calls as possible.

        See `Generator.render` for the arguments. Candidates whose prompts need a different
        number of token windows or regions go in separate calls, so each image depends only on
        its own prompt, regions, seed and settings, and re-rendering one candidate alone
        reproduces it. Regions are blended by `imagineer.generators.regions`, with the whole
        prompt keeping ``config.region_base`` of the weight inside them.

        Raises:
            InvalidInput: An empty prompt, ``n < 1``, a size that is not a multiple of 8, bad
                seeds, mismatched prompt, negative prompt and region lists, or regions for a
                pipeline that cannot take them (two text encoders, as in SDXL).
            UnknownScheduler: ``scheduler`` is not one of `scheduler_names()`.
        """
        # 1. Check inputs
        prompts, negatives = _check_prompts(prompt, negative_prompt)
        if n is None:
            n = max(1, len(seeds) // len(prompts)) if seeds is not None else 1
        if n < 1:
            raise InvalidInput(f"n must be >= 1, got {n}")
        all_seeds = _check_seeds(seeds, seed, n * len(prompts))
        steps = int(steps if steps is not None else self.default("steps"))
        guidance = float(guidance if guidance is not None else self.default("guidance"))
        if steps < 1:
            raise InvalidInput(f"steps must be >= 1, got {steps}")
        scheduler_name = self._use_scheduler(scheduler or self.default("scheduler"))
        pipe = self.pipeline
        width, height = _check_size(pipe, width, height)

        per_prompt = _check_regions(regions, len(prompts), self.supports_regions)

        # 2. Fit every prompt to the text encoder's window
        chunked = self.config.long_prompts == "chunk" and supports_chunking(pipe)
        windows = [measure(pipe.tokenizer, text, chunked) for text in prompts]
        neg_windows = [measure(pipe.tokenizer, text, chunked) for text in negatives]
        region_texts = [r.prompt for found in per_prompt for r in found]
        region_windows = {t: measure(pipe.tokenizer, t, chunked) for t in region_texts}
        _warn_truncated(
            [*windows, *neg_windows, *region_windows.values()],
            [*prompts, *negatives, *region_windows],
        )
        # Every segment of an embedding (the whole prompt, each region) has the same length.
        region_chunks = [
            max((region_windows[r.prompt].chunks for r in found), default=0) for found in per_prompt
        ]

        # 3. Render, one pipeline call per group of prompts that share windows and region count
        jobs = [(index, index // n) for index in range(n * len(prompts))]
        keys = [
            (
                max(windows[p].chunks, neg_windows[p].chunks, region_chunks[p]) if chunked else 0,
                len(per_prompt[p]),
            )
            for p in range(len(prompts))
        ]
        groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for index, p_index in jobs:
            groups.setdefault(keys[p_index], []).append((index, p_index))
        step_done = _step_counter(progress, steps * len(groups))
        images: dict[int, Any] = {}
        seconds: dict[int, float] = {}
        for (chunks, _), group in groups.items():
            started = time.perf_counter()
            batch = self._call(
                pipe,
                [prompts[p] for _, p in group],
                [negatives[p] for _, p in group],
                [all_seeds[i] for i, _ in group],
                chunks,
                [per_prompt[p] for _, p in group],
                steps=steps,
                guidance=guidance,
                width=width,
                height=height,
                callback=step_done,
            )
            share = (time.perf_counter() - started) / len(group)
            for (index, _), image in zip(group, batch, strict=True):
                images[index], seconds[index] = image, share

        # 4. Record everything needed to reproduce each candidate
        return [
            Candidate(
                image=images[index],
                params=self._params(
                    pipe,
                    prompts[p],
                    negatives[p],
                    all_seeds[index],
                    scheduler_name,
                    steps=steps,
                    guidance=guidance,
                    width=width,
                    height=height,
                    regions=tuple(per_prompt[p]),
                    region_base=self.config.region_base if per_prompt[p] else None,
                ),
                prompt_window=windows[p],
                negative_window=neg_windows[p],
                seconds=seconds[index],
            )
            for index, p in jobs
        ]

    def _call(
        self,
        pipe: Any,
        prompts: list[str],
        negatives: list[str],
        seeds: list[int],
        chunks: int,
        regions: list[list[Region]],
        **settings: Any,
    ) -> list[Any]:
        """One batched pipeline call; ``chunks > 0`` encodes prompts in that many windows.

        With regions (the same number for every prompt of the call), each prompt's embedding
        is its segments side by side: the whole prompt, then each region's prompt, each
        ``chunks`` windows long; the negative prompt fills every segment of its row.
        """
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        kwargs: dict[str, Any] = {
            "num_inference_steps": settings["steps"],
            "guidance_scale": settings["guidance"],
            "width": settings["width"],
            "height": settings["height"],
            "generator": generators,
            "output_type": "pil",
            "callback_on_step_end": settings["callback"],
        }
        segments = 1 + len(regions[0])
        if segments > 1:
            chunks = max(chunks, 1)  # "truncate": one window per segment, as recorded
            pairs = zip(prompts, regions, strict=True)
            texts = [[p, *(r.prompt for r in found)] for p, found in pairs]
            kwargs["prompt_embeds"] = torch.cat(
                [torch.cat([encode_chunked(pipe, t, chunks) for t in row], 1) for row in texts]
            )
            kwargs["negative_prompt_embeds"] = torch.cat(
                [encode_chunked(pipe, p, chunks).repeat(1, segments, 1) for p in negatives]
            )
            scale = pipe.vae_scale_factor
            latent = (settings["height"] // scale, settings["width"] // scale)
            weights = torch.stack(
                [region_weights(found, self.config.region_base, *latent) for found in regions]
            )
            length = kwargs["prompt_embeds"].shape[1] // segments
            with (
                torch.inference_mode(),
                regional_attention(pipe.unet, weights, [length] * segments),
            ):
                return list(pipe(**kwargs).images)
        if chunks > 1:
            kwargs["prompt_embeds"] = torch.cat([encode_chunked(pipe, p, chunks) for p in prompts])
            kwargs["negative_prompt_embeds"] = torch.cat(
                [encode_chunked(pipe, p, chunks) for p in negatives]
            )
        else:
            kwargs["prompt"], kwargs["negative_prompt"] = prompts, negatives
        with torch.inference_mode():
            return list(pipe(**kwargs).images)

    def _use_scheduler(self, name: str | None) -> str:
        """Put the named scheduler on the pipeline (built once per name); return its name."""
        pipe = self.pipeline
        if "original" not in self._schedulers:
            self._schedulers["original"] = pipe.scheduler
        if not name:
            pipe.scheduler = self._schedulers["original"]
            return _scheduler_label(pipe.scheduler)
        key = canonical_scheduler(name)
        if key not in self._schedulers:
            import diffusers

            class_name, options = SCHEDULERS[key]
            base = self._schedulers["original"].config
            self._schedulers[key] = getattr(diffusers, class_name).from_config(base, **options)
        pipe.scheduler = self._schedulers[key]
        return key

    def _params(
        self, pipe: Any, prompt: str, negative: str, seed: int, scheduler: str, **settings: Any
    ) -> RenderParams:
        return RenderParams(
            generator=self.name,
            model=self.config.model,
            model_revision=self.revision,
            pipeline=type(pipe).__name__,
            scheduler=scheduler,
            seed=seed,
            prompt=prompt,
            negative_prompt=negative,
            device=str(pipe.device),
            dtype=str(pipe.dtype).removeprefix("torch."),
            **settings,
        )


def _warn_truncated(windows: list[PromptWindow], texts: list[str]) -> None:
    """Log every prompt that lost text to the window, with what was cut."""
    for window, text in zip(windows, texts, strict=True):
        if window.truncated:
            logger.warning(
                "prompt has %d tokens, the text encoder reads %d; cut: %r (prompt: %r)",
                window.tokens,
                window.window,
                window.truncated,
                text,
            )


def _step_counter(progress: StepCallback | None, total: int) -> Any:
    """A diffusers ``callback_on_step_end`` that reports ``(steps done, total)`` to ``progress``."""
    done = [0]

    def on_step_end(*_: Any) -> dict[str, Any]:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)
        return {}

    return on_step_end


def _scheduler_label(scheduler: Any) -> str:
    """imagineer's name for a scheduler instance, or its class name if it has none."""
    for key, (class_name, options) in SCHEDULERS.items():
        same_class = type(scheduler).__name__ == class_name
        if same_class and all(scheduler.config.get(k) == v for k, v in options.items()):
            return key
    return type(scheduler).__name__


def _check_prompts(
    prompt: str | Sequence[str], negative: str | Sequence[str]
) -> tuple[list[str], list[str]]:
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts:
        raise InvalidInput("no prompt given")
    for text in prompts:
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput(f"prompt must be non-empty text, got {text!r}")
    negatives = [negative] * len(prompts) if isinstance(negative, str) else list(negative)
    if len(negatives) != len(prompts):
        raise InvalidInput(
            f"got {len(negatives)} negative prompts for {len(prompts)} prompts; "
            "pass one for all, or one per prompt"
        )
    return prompts, negatives


def _check_regions(
    regions: Sequence[Sequence[Region]] | None, prompts: int, supported: bool
) -> list[list[Region]]:
    """One list of regions per prompt (empty lists when none were given)."""
    if regions is None:
        return [[] for _ in range(prompts)]
    if isinstance(regions, Region) or len(regions) != prompts:
        raise InvalidInput(f"regions must be one list per prompt ({prompts} lists)")
    found = [list(r) for r in regions]
    for items in found:
        if any(not isinstance(item, Region) for item in items):
            raise InvalidInput("each region must be a Region(prompt=..., box=...)")
    if any(found) and not supported:
        raise InvalidInput(
            "this pipeline cannot take regional prompts: they need a single text encoder and a "
            "pipeline that accepts prompt embeddings (SD 1.x/2.x, SD-Turbo, the pocket model)"
        )
    return found


def _check_seeds(seeds: Sequence[int] | None, seed: int, count: int) -> list[int]:
    if seeds is None:
        return derive_seeds(seed, count)
    seeds = list(seeds)
    if len(seeds) != count:
        raise InvalidInput(f"got {len(seeds)} seeds for {count} candidates")
    for value in seeds:
        if not 0 <= value <= MAX_SEED:
            raise InvalidInput(f"seed {value} is outside [0, 2**63)")
    return seeds


def _check_size(pipe: Any, width: int | None, height: int | None) -> tuple[int, int]:
    """Requested size, or the model's native size; both must be multiples of 8."""
    native = int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)
    width = native if width is None else width
    height = native if height is None else height
    for label, value in (("width", width), ("height", height)):
        if value < 8 or value % 8:
            raise InvalidInput(f"{label} must be a positive multiple of 8, got {value}")
    return width, height
