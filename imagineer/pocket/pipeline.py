"""The pocket training run, stage by stage: data, CLIP, scorer, text encoder, VAE, decoder, UNet,
export.

Each stage reads the products of the ones before it from the run directory, so stages can run
in separate processes and sessions: ``clip.pt`` (and the exported scorer), ``scorer/clip.pt``
(a scorer of its own, when the recipe has one), ``text_encoder/`` (the CLIP's text tower),
``generator_text/`` (that tower taught to carry every attribute, when the text stage runs),
``vae/`` (the final VAE with its latent scaling factor; its decoder replaced by the decoder
stage's, when that runs), ``latents.pt`` (the training set, encoded once), ``unet.pt``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from imagineer.pocket.checkpoints import Deadline
from imagineer.pocket.datasets import cached_renders
from imagineer.pocket.world import Scene, World, load_world

if TYPE_CHECKING:
    from imagineer.pocket.train import TrainConfig

Renders = tuple[np.ndarray, list[Scene]]

logger = logging.getLogger(__name__)


def run(
    config: TrainConfig,
    stages: list[str],
    run_dir: Path,
    out: Path,
    deadline: Deadline,
    pool_part: tuple[int, int] | None = None,
) -> None:
    """Run the requested stages in order, each skipped once done, stopping at the deadline.

    ``pool_part`` ``(k, n)``: the judged stage only builds its pool's chunks ``k`` modulo ``n``
    (one of ``n`` processes side by side, see ``lanes.py``) and does not tune.
    """
    world = load_world()
    # 1. Data: training renders and a held-out set, rendered once and cached.
    data = cached_renders(run_dir / "data", config.n_scenes, config.seed, world)
    held_out = cached_renders(run_dir / "data", config.n_held_out, config.seed + 1, world)
    # 2. The CLIP (the scorer, unless the recipe has its own), and its text tower as the
    #    generator's text encoder.
    if "clip" in stages and not deadline.passed():
        clip_stage(config, data, held_out, world, run_dir, out, deadline)
    # 2b. The scorer of its own, when the recipe has one.
    if "scorer" in stages and config.scorer_spec is not None and not deadline.passed():
        scorer_stage(config, data, held_out, world, run_dir, out, deadline)
    # 3. The generator's text encoder: the CLIP's tower, taught to carry every attribute.
    if "text" in stages and not deadline.passed():
        text_stage(config, data[1], held_out[1], world, run_dir, deadline)
    # 4. The VAE.
    if "vae" in stages and not deadline.passed():
        vae_stage(config, data[0], held_out, world, run_dir, deadline)
    # 5. The VAE's decoder, sharpened with the encoder (the UNet's latent space) frozen.
    if "decoder" in stages and not deadline.passed():
        decoder_stage(config, data[0], held_out, world, run_dir, deadline)
    # 6. The UNet, on latents encoded once; the generator is exported when it is done.
    if "unet" in stages and not deadline.passed():
        done = unet_stage(config, data, world, run_dir, deadline)
        if done:
            export(config, run_dir, out)
    # 7. The scorer adapted to the exported generator's pictures.
    if "adapt" in stages and config.adapt.steps > 0 and not deadline.passed():
        adapt_stage(config, data, held_out, world, run_dir, out, deadline)
    # 8. The scorer tuned on the generator's own renders of training captions, judged.
    if "judged" in stages and config.judged.steps > 0 and not deadline.passed():
        judged_stage(config, data, held_out, world, run_dir, out, deadline, pool_part)
    # 9. Export on demand (e.g. interim models to evaluate, or a scorer trained on past its
    #    stage's first export).
    if "export" in stages:
        export_scorer_checkpoint(config, run_dir, out)
        export(config, run_dir, out)


def clip_stage(
    config: TrainConfig,
    data: Renders,
    held_out: Renders,
    world: World,
    run_dir: Path,
    out: Path,
    deadline: Deadline,
) -> None:
    """Train the CLIP; save its text tower as the text encoder at ``text_encoder_step``, and
    export the scorer whenever the stage is done.

    The generator's text encoder is frozen once the UNet trains on it, but the scorer is a
    product of its own: training can go on past ``text_encoder_step`` to sharpen the scorer
    without touching the generator. With a scorer of its own in the recipe (``scorer_spec``),
    this CLIP is not exported.
    """
    from imagineer.pocket.convert import to_clip_text_model
    from imagineer.pocket.export import export_scorer
    from imagineer.pocket.train_clip import RankTune, train_clip

    stage, text_dir = config.clip, run_dir / "text_encoder"
    is_scorer = config.scorer_spec is None
    frozen_at = min(stage.text_encoder_step or stage.steps, stage.steps)
    args = (data, held_out, world, run_dir, config.seed, deadline)
    if not (text_dir / "config.json").is_file():
        first = stage.model_copy(update={"steps": frozen_at, "tune": RankTune()})
        model = train_clip(config.clip_spec, first, *args)
        if model is None:
            return
        to_clip_text_model(model).save_pretrained(str(text_dir))
        if is_scorer:
            export_scorer(model, config.clip_spec, out / "scorer")
    if stage.total_steps > frozen_at:
        model = train_clip(config.clip_spec, stage, *args)
        if model is not None and is_scorer:
            export_scorer(model, config.clip_spec, out / "scorer")


def scorer_stage(
    config: TrainConfig,
    data: Renders,
    held_out: Renders,
    world: World,
    run_dir: Path,
    out: Path,
    deadline: Deadline,
) -> None:
    """Train the recipe's scorer of its own (``scorer_spec``) in ``run_dir / "scorer"``, on the
    same data and seed as the CLIP stage; export it when done. Its text tower conditions nothing:
    the generator keeps the ``clip`` stage's."""
    from imagineer.pocket.export import export_scorer
    from imagineer.pocket.train_clip import train_clip

    spec, stage, scorer_dir = config.scorer_parts(run_dir)
    scorer_dir.mkdir(parents=True, exist_ok=True)
    model = train_clip(spec, stage, data, held_out, world, scorer_dir, config.seed, deadline)
    if model is not None:
        export_scorer(model, spec, out / "scorer")


def text_stage(
    config: TrainConfig,
    scenes: list[Scene],
    held_out: list[Scene],
    world: World,
    run_dir: Path,
    deadline: Deadline,
) -> None:
    """Fine-tune the CLIP's text tower into the generator's text encoder (``generator_text/``)."""
    from imagineer.pocket.train_text import train_text_encoder

    out = run_dir / GENERATOR_TEXT
    if config.text.steps == 0 or (out / "config.json").is_file():
        return
    if not (run_dir / "text_encoder" / "config.json").is_file():
        logger.warning("text stage needs the clip stage first; skipping")
        return
    text = _load_text(run_dir / "text_encoder", run_dir)
    text_encoder, done = train_text_encoder(
        config.text, text, scenes, held_out, world, run_dir, config.seed, deadline
    )
    if done:
        text_encoder.save_pretrained(str(out))


def vae_stage(
    config: TrainConfig,
    images: np.ndarray,
    held_out: Renders,
    world: World,
    run_dir: Path,
    deadline: Deadline,
) -> None:
    """Train the VAE; when done, fix its latent scaling factor and save it.

    The VAE may be trained longer later (``--vae-steps``): everything encoded with the old one
    (``latents.pt``) is then deleted and a UNet checkpoint trained on those latents is set aside,
    because a UNet only makes sense in the latent space it was trained in.
    """
    from imagineer.pocket.checkpoints import load_checkpoint
    from imagineer.pocket.train_vae import pixels_to_vae, train_vae

    vae_dir = run_dir / "vae"
    if (vae_dir / "config.json").is_file():
        state = load_checkpoint(run_dir / "vae.pt")
        trained = int(state["step"]) if state is not None else config.vae.steps
        if trained >= config.vae.steps:
            logger.info("vae stage already done (%d steps)", trained)
            return
        _set_aside_vae_products(run_dir, trained)
    vae = train_vae(
        config.vae_spec, config.vae, images, held_out, world, run_dir, config.seed, deadline
    )
    if vae is None:
        return
    with torch.inference_mode():
        sample = pixels_to_vae(images[:512])
        std = float(vae.encode(sample).latent_dist.mean.std())
    vae.register_to_config(scaling_factor=1.0 / std)  # unit-variance latents, as SD's 0.18215
    logger.info("vae latent std %.4f -> scaling_factor %.4f", std, 1.0 / std)
    vae.save_pretrained(str(vae_dir))


def decoder_stage(
    config: TrainConfig,
    images: np.ndarray,
    held_out: Renders,
    world: World,
    run_dir: Path,
    deadline: Deadline,
) -> None:
    """Sharpen the VAE's decoder; when done, ``vae/`` holds the new decoder (same encoder)."""
    from diffusers import AutoencoderKL

    from imagineer.pocket.checkpoints import load_checkpoint
    from imagineer.pocket.train_vae import train_decoder

    stage = config.decoder
    if stage.steps == 0:
        return
    if not (run_dir / "vae" / "config.json").is_file():
        logger.warning("decoder stage needs the vae stage first; skipping")
        return
    state = load_checkpoint(run_dir / "decoder.pt")
    if state is not None and int(state["step"]) >= stage.steps:
        logger.info("decoder stage already done (%d steps)", int(state["step"]))
        return
    vae = AutoencoderKL.from_pretrained(str(run_dir / "vae"))
    vae, done = train_decoder(vae, stage, images, held_out, world, run_dir, config.seed, deadline)
    if done:
        vae.save_pretrained(str(run_dir / "vae"))


def _set_aside_vae_products(run_dir: Path, trained: int) -> None:
    """Forget the products of a VAE that is about to be trained further."""
    import shutil

    shutil.rmtree(run_dir / "vae")
    (run_dir / "latents.pt").unlink(missing_ok=True)
    (run_dir / "decoder.pt").unlink(missing_ok=True)
    if (run_dir / "unet.pt").is_file():
        stale = run_dir / f"unet-on-vae-step{trained}.pt"
        (run_dir / "unet.pt").replace(stale)
        logger.warning("the VAE changes: set the UNet checkpoint aside as %s", stale)


GENERATOR_TEXT = "generator_text"


def generator_text_dir(config: TrainConfig, run_dir: Path) -> Path:
    """Where the generator's text encoder is: the text stage's product, or the CLIP's tower."""
    return run_dir / (GENERATOR_TEXT if config.text.steps > 0 else "text_encoder")


def text_encoder_and_tokenizer(config: TrainConfig, run_dir: Path) -> tuple[Any, Any]:
    """The generator's frozen text encoder, and the CLIP tokenizer."""
    return _load_text(generator_text_dir(config, run_dir), run_dir)


def _load_text(path: Path, run_dir: Path) -> tuple[Any, Any]:
    from transformers import CLIPTextModel

    from imagineer.pocket.tokenizer import build_clip_tokenizer

    text_encoder = CLIPTextModel.from_pretrained(str(path)).eval()
    text_encoder.requires_grad_(False)
    return text_encoder, build_clip_tokenizer(run_dir / "tokenizer")


def latents_for(run_dir: Path, images: np.ndarray) -> torch.Tensor:
    """The training set's scaled VAE latents, encoded once and cached as ``latents.pt``."""
    from diffusers import AutoencoderKL

    from imagineer.pocket.train_unet import encode_latents

    path = run_dir / "latents.pt"
    if path.is_file():
        return torch.load(path)
    vae = AutoencoderKL.from_pretrained(str(run_dir / "vae")).eval()
    logger.info("encoding %d training images to latents", len(images))
    latents = encode_latents(vae, images)
    torch.save(latents, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    return latents


def unet_stage(
    config: TrainConfig, data: Renders, world: World, run_dir: Path, deadline: Deadline
) -> bool:
    """Train the UNet (needs the CLIP, text and VAE stages); returns whether it is done."""
    from imagineer.pocket.train_unet import train_unet

    if not generator_text_dir(config, run_dir).is_dir() or not (run_dir / "vae").is_dir():
        logger.warning("unet stage needs the clip, text and vae stages first; skipping")
        return False
    latents = latents_for(run_dir, data[0])
    text = text_encoder_and_tokenizer(config, run_dir)
    _, done = train_unet(
        config.unet_spec, config.unet, latents, data[1], text, world, run_dir, config.seed, deadline
    )
    return done


REUSED_FILE = "reused.json"


def reuse_generator_parts(generator: Path, run_dir: Path, unet_step: int | None = None) -> None:
    """Seed a new run with the CLIP-tower text encoder and VAE of an exported generator.

    For a recipe that changes only the text or UNet stages: the CLIP and VAE stages' products
    are taken from a generator this recipe's earlier stages made (e.g. the bundled one), upcast
    to fp32, and recorded in ``reused.json`` with the generator's manifest hash, so the run says
    where they came from. Leave ``vae`` out of such a run's ``--stages``; ``clip`` may stay: it
    trains the scorer from step 0 and keeps the reused tower as the generator's (session 4).

    With ``unet_step``, the generator's text encoder is taken as the text stage's product and its
    UNet as the UNet stage's checkpoint at that step (its exported EMA weights as both the model
    and the average, no optimiser state: AdamW starts afresh and warms up again), so the UNet
    stage continues from it, e.g. with a longer recipe and a cool-down (session 12). Run only
    the ``unet`` and ``export`` stages on such a run.
    """
    import hashlib
    import json

    from diffusers import AutoencoderKL
    from transformers import CLIPTextModel

    if (run_dir / REUSED_FILE).is_file():
        logger.info("resuming a run seeded by %s", run_dir / REUSED_FILE)
        return
    if (run_dir / "text_encoder").exists() or (run_dir / "vae").exists():
        raise FileExistsError(f"{run_dir} already has a text encoder or VAE; not reusing")
    manifest = generator / "manifest.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"{generator} is not an exported pocket generator (no manifest)")
    text = CLIPTextModel.from_pretrained(str(generator / "text_encoder"), torch_dtype=torch.float32)
    text.save_pretrained(str(run_dir / ("text_encoder" if unet_step is None else GENERATOR_TEXT)))
    vae = AutoencoderKL.from_pretrained(str(generator / "vae"), torch_dtype=torch.float32)
    vae.save_pretrained(str(run_dir / "vae"))
    parts = ["text_encoder", "vae"] if unet_step is None else [GENERATOR_TEXT, "vae", "unet"]
    if unet_step is not None:
        _seed_unet_checkpoint(generator, run_dir, unet_step)
    record = {
        "generator": str(generator),
        "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
        "parts": parts,
        **({"unet_step": unet_step} if unet_step is not None else {}),
    }
    (run_dir / REUSED_FILE).write_text(json.dumps(record, indent=2) + "\n")
    logger.info("reused the %s of %s", ", ".join(parts), generator)


def _seed_unet_checkpoint(generator: Path, run_dir: Path, step: int) -> None:
    """``unet.pt`` at ``step`` from an exported UNet: its weights as model and EMA, no optimiser."""
    from diffusers import UNet2DConditionModel

    from imagineer.pocket.checkpoints import save_checkpoint

    unet = UNet2DConditionModel.from_pretrained(str(generator / "unet"), torch_dtype=torch.float32)
    average = [p.detach().clone() for p in unet.parameters()]
    state = {"model": unet.state_dict(), "ema": average, "step": step, "warm_start": step}
    save_checkpoint(run_dir / "unet.pt", state)


def adapt_stage(
    config: TrainConfig,
    data: Renders,
    held_out: Renders,
    world: World,
    run_dir: Path,
    out: Path,
    deadline: Deadline,
) -> None:
    """Adapt the finished CLIP to the exported generator's pictures; export the scorer when done."""
    from imagineer.pocket.adapt_clip import adapt_clip, build_pool
    from imagineer.pocket.checkpoints import load_checkpoint
    from imagineer.pocket.export import export_scorer
    from imagineer.pocket.models import build_clip

    spec, stage, scorer_dir = config.scorer_parts(run_dir)
    clip = load_checkpoint(scorer_dir / "clip.pt")
    generator = out / "generator"
    if clip is None or clip["step"] < stage.total_steps or not generator.is_dir():
        logger.warning(
            "adapt stage needs the scorer's stage done and %s exported; skipping", generator
        )
        return
    pool = build_pool(
        config.adapt, data, world, generator, run_dir / "adapt_pool", config.seed, deadline
    )
    if pool is None:
        return
    model = build_clip(spec)
    model.load_state_dict(clip["model"])
    args = (pool, data, held_out, world, scorer_dir, config.seed, deadline)
    adapted = adapt_clip(model, stage, config.adapt, *args)
    if adapted is not None:
        export_scorer(adapted, spec, out / "scorer")


def judged_stage(
    config: TrainConfig,
    data: Renders,
    held_out: Renders,
    world: World,
    run_dir: Path,
    out: Path,
    deadline: Deadline,
    pool_part: tuple[int, int] | None = None,
) -> None:
    """Tune the finished scorer (adapted, if the adapt stage ran) on the exported generator's
    renders of training captions, labelled by the judge; export the scorer when done. With
    ``pool_part``, only build that part of the pool."""
    from imagineer.pocket.export import export_scorer
    from imagineer.pocket.judged import build_judged_pool, tune_on_judged
    from imagineer.pocket.models import build_clip

    spec, stage, scorer_dir = config.scorer_parts(run_dir)
    state, name = _finished_scorer(config, scorer_dir)
    generator = out / "generator"
    if state is None or not generator.is_dir():
        logger.warning(
            "judged stage needs the scorer's stages done and %s exported; skipping", generator
        )
        return
    logger.info("judged stage starts from the scorer's %s checkpoint", name)
    pool = build_judged_pool(
        config.judged,
        data[1],
        world,
        stage,
        generator,
        run_dir / "judged_pool",
        config.seed,
        deadline,
        pool_part,
    )
    if pool is None:
        return
    model = build_clip(spec)
    model.load_state_dict(state["model"])
    args = (pool, data, held_out, world, scorer_dir, config.seed, deadline)
    tuned = tune_on_judged(model, stage, config.judged, *args)
    if tuned is not None:
        export_scorer(tuned, spec, out / "scorer")


def _finished_scorer(config: TrainConfig, scorer_dir: Path) -> tuple[dict[str, Any] | None, str]:
    """The scorer's checkpoint after its last finished stage before ``judged`` (adapt when the
    recipe has it, else clip), with that stage's name; None while that stage is unfinished."""
    from imagineer.pocket.checkpoints import load_checkpoint

    _, stage, _ = config.scorer_parts(scorer_dir)
    if config.adapt.steps > 0:
        state = load_checkpoint(scorer_dir / "adapt.pt")
        done = state is not None and state["step"] >= config.adapt.steps
        return (state if done else None), "adapt"
    state = load_checkpoint(scorer_dir / "clip.pt")
    done = state is not None and state["step"] >= stage.total_steps
    return (state if done else None), "clip"


def reuse_scorer(scorer: Path, config: TrainConfig, run_dir: Path) -> None:
    """Seed a run's finished scorer checkpoint with an exported scorer (e.g. the bundled one).

    For recipes that add stages after the scorer's (``adapt``, ``judged``) when the scorer's
    own training checkpoint is gone: the exported fp16 weights are upcast to fp32 and written as
    the scorer stage's final checkpoint (no optimiser state; that stage cannot be resumed from
    it), and ``reused.json`` records the source and its manifest hash.
    """
    import hashlib
    import json

    from imagineer.pocket.checkpoints import save_checkpoint
    from imagineer.pocket.export import load_exported_scorer

    spec, stage, scorer_dir = config.scorer_parts(run_dir)
    record_path = run_dir / REUSED_FILE
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    if (scorer_dir / "clip.pt").exists():
        if "scorer" in record:
            logger.info("resuming a run whose scorer came from %s", record["scorer"]["from"])
            return
        raise FileExistsError(f"{scorer_dir} already has a scorer checkpoint; not reusing")
    manifest = scorer / "manifest.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"{scorer} is not an exported pocket scorer (no manifest)")
    model = load_exported_scorer(scorer, spec)
    state = {"model": model.state_dict(), "optimiser": None, "step": stage.total_steps}
    save_checkpoint(scorer_dir / "clip.pt", state)
    record["scorer"] = {
        "from": str(scorer),
        "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
    }
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    logger.info("reused the scorer of %s as the run's finished scorer", scorer)


def export_scorer_checkpoint(config: TrainConfig, run_dir: Path, out: Path) -> None:
    """Write the scorer from the latest checkpoint of its last stage (judged, adapt, else
    clip)."""
    from imagineer.pocket.checkpoints import load_checkpoint
    from imagineer.pocket.export import export_scorer
    from imagineer.pocket.models import build_clip

    spec, _, scorer_dir = config.scorer_parts(run_dir)
    for name in ("judged", "adapt", "clip"):
        state = load_checkpoint(scorer_dir / f"{name}.pt")
        if state is not None:
            break
    else:
        logger.warning("no scorer checkpoint in %s yet; no scorer to export", scorer_dir)
        return
    model = build_clip(spec)
    model.load_state_dict(state["model"])
    logger.info("exporting the scorer at %s step %d", name, state["step"])
    export_scorer(model.eval(), spec, out / "scorer")


def export(config: TrainConfig, run_dir: Path, out: Path) -> None:
    """Write the generator pipeline from the run's text encoder, VAE and EMA UNet checkpoint."""
    from diffusers import AutoencoderKL

    from imagineer.pocket.checkpoints import load_checkpoint
    from imagineer.pocket.export import export_generator
    from imagineer.pocket.models import build_unet

    state = load_checkpoint(run_dir / "unet.pt")
    if state is None:
        logger.warning("no UNet checkpoint in %s yet; nothing to export", run_dir)
        return
    text_encoder, _ = text_encoder_and_tokenizer(config, run_dir)
    if "text_ema" in state:  # trained with the UNet (``text_encoder_lr``): its average ships
        for parameter, average in zip(text_encoder.parameters(), state["text_ema"], strict=True):
            parameter.data.copy_(average)
    vae = AutoencoderKL.from_pretrained(str(run_dir / "vae")).eval()
    unet = build_unet(
        config.unet_spec,
        text_encoder.config.hidden_size,
        vae.config.latent_channels,
        sample_size=config.vae_spec.image_size // config.vae_spec.factor,
    )
    unet.load_state_dict(state["model"])
    for parameter, average in zip(unet.parameters(), state["ema"], strict=True):
        parameter.data.copy_(average)
    logger.info("exporting the generator at UNet step %d", state["step"])
    export_generator(text_encoder, vae, unet.eval(), out / "generator", config.defaults)
