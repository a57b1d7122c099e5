"""Train the pocket models: ``clip`` (a CLIP whose text tower becomes the generator's text
encoder, and the scorer unless the recipe has a scorer of its own), ``scorer`` (that scorer, when
``scorer_spec`` is set), ``text`` (the generator's text encoder), ``vae``, ``decoder`` (the VAE's
decoder sharpened, encoder frozen), ``unet``, ``adapt`` (the scorer tuned on the generator's own
pictures), ``judged`` (the scorer tuned on the generator's renders of training captions, labelled
by the judge), then ``export``.

One command, seeded and resumable: every stage checkpoints into ``--run-dir`` (gitignored) and a
re-run of the same command continues where the last one stopped, so the hours of training can be
split across sessions. ``--minutes``, SIGTERM or a first Ctrl-C stop the process cleanly at a
checkpoint. By default the stages run in two lanes of child processes that share the threads, the
scorer's beside the generator's (``lanes.py``: faster on a small CPU); ``--lanes 1`` runs them in
this process, in order.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m imagineer.pocket.train \\
        --out imagineer/pocket/models --run-dir runs/pocket --minutes 120

A new run follows ``recipe.json``, the exact recipe of the bundled models (``--config`` for
another); a resumed run keeps the recipe saved in its run directory. Each stage is skipped once
done; the scorer is exported when its stage ends (``clip``, or ``scorer`` when the recipe has
one), the generator when the UNet stage ends (or on demand with ``--stages export``, e.g. to
evaluate a checkpoint: ``--stages export --out runs/pocket/interim``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator

from imagineer.pocket.adapt_clip import AdaptStage
from imagineer.pocket.checkpoints import Deadline
from imagineer.pocket.judged import JudgedStage
from imagineer.pocket.lanes import Phase
from imagineer.pocket.models import ClipSpec, UnetSpec, VaeSpec
from imagineer.pocket.train_clip import ClipStage
from imagineer.pocket.train_text import TextStage
from imagineer.pocket.train_unet import UnetStage
from imagineer.pocket.train_vae import DecoderStage, VaeStage

logger = logging.getLogger(__name__)

STAGES = ("clip", "scorer", "text", "vae", "decoder", "unet", "adapt", "judged", "export")
RECIPE_FILE = Path(__file__).with_name("recipe.json")
"""The exact recipe of the bundled pocket models (the run's ``config.json``)."""


class TrainConfig(BaseModel):
    """Everything that defines a pocket training run; saved as ``config.json`` in the run dir."""

    seed: int = 0
    n_scenes: int = Field(20000, ge=100, description="Training renders (cached as .npy).")
    n_held_out: int = Field(100, ge=10, description="Held-out renders for in-run evaluation.")
    clip_spec: ClipSpec = ClipSpec()
    vae_spec: VaeSpec = VaeSpec()
    unet_spec: UnetSpec = UnetSpec()
    clip: ClipStage = ClipStage()
    scorer_spec: ClipSpec | None = Field(
        None,
        description="A scorer of its own (the ``scorer`` stage), e.g. another image tower; "
        "None: the ``clip`` stage's CLIP is the scorer too.",
    )
    scorer: ClipStage | None = Field(None, description="The ``scorer`` stage's knobs.")
    text: TextStage = TextStage()
    vae: VaeStage = VaeStage()
    decoder: DecoderStage = DecoderStage()
    unet: UnetStage = UnetStage()
    adapt: AdaptStage = AdaptStage()
    judged: JudgedStage = JudgedStage()
    defaults: dict[str, Any] = Field(
        default_factory=lambda: {"steps": 20, "guidance": 4.0, "scheduler": "euler"},
        description="imagineer_defaults.json of the exported generator.",
    )

    @model_validator(mode="after")
    def _scorer_whole(self) -> TrainConfig:
        if (self.scorer_spec is None) != (self.scorer is None):
            raise ValueError("scorer_spec and scorer go together: set both or neither")
        return self

    def scorer_parts(self, run_dir: Path) -> tuple[ClipSpec, ClipStage, Path]:
        """The scorer's spec, stage and checkpoint directory: its own stage's when the
        recipe has one (``run_dir / "scorer"``), else the ``clip`` stage's."""
        if self.scorer_spec is not None and self.scorer is not None:
            return self.scorer_spec, self.scorer, run_dir / "scorer"
        return self.clip_spec, self.clip, run_dir


def load_config(run_dir: Path, overrides: dict[str, Any]) -> TrainConfig:
    """The run's config: the saved one when resuming (so a resume cannot change the recipe)."""
    path = run_dir / "config.json"
    if path.is_file():
        config = TrainConfig.model_validate_json(path.read_text())
        logger.info("resuming the run in %s with its saved config", run_dir)
        return config
    config = TrainConfig.model_validate(overrides)
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(config.model_dump_json(indent=2) + "\n")
    return config


def set_steps(config: TrainConfig, args: argparse.Namespace, run_dir: Path) -> None:
    """Apply ``--{stage}-steps``: the one recipe change a resume may make, recorded in the run.

    Step counts are how a measured budget is spent; a stage already past a new, lower count
    simply counts as done.
    """
    changed = False
    for stage in ("clip", "scorer", "vae", "decoder", "unet"):
        steps = getattr(args, f"{stage}_steps")
        if steps is None:
            continue
        if getattr(config, stage) is None:
            raise SystemExit(f"--{stage}-steps: this run's recipe has no {stage} stage")
        if steps != getattr(config, stage).steps:
            logger.info("%s stage: %d steps (was %d)", stage, steps, getattr(config, stage).steps)
            getattr(config, stage).steps = steps
            changed = True
    if changed:
        (run_dir / "config.json").write_text(config.model_dump_json(indent=2) + "\n")


def main() -> None:
    """CLI entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "models")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/pocket"))
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--minutes", type=float, default=None, help="Stop after this long.")
    parser.add_argument("--threads", type=int, default=2, help="All the threads to use.")
    parser.add_argument(
        "--lanes",
        type=int,
        choices=(1, 2),
        default=2,
        help="2: train the scorer beside the generator in child processes that share the "
        "threads (faster on a small CPU, see lanes.py); 1: every stage in this process, in order.",
    )
    parser.add_argument("--lane", default=None, help=argparse.SUPPRESS)  # a lane's child
    parser.add_argument("--pool-part", type=_part, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--config",
        type=Path,
        default=RECIPE_FILE,
        help="The recipe of a new run (default: the one that made the bundled models).",
    )
    parser.add_argument(
        "--reuse",
        type=Path,
        default=None,
        help="Seed a new run with this exported generator's text encoder and VAE "
        "(for recipes that change only the text or UNet stages).",
    )
    parser.add_argument(
        "--reuse-unet-step",
        type=int,
        default=None,
        help="With --reuse: also take that generator's text encoder (the text stage's product) "
        "and its UNet, as the UNet stage at this step, to continue the UNet stage.",
    )
    parser.add_argument(
        "--reuse-scorer",
        type=Path,
        default=None,
        help="Seed a new run's finished scorer with this exported scorer (for recipes that "
        "only add the adapt or judged stages when the scorer's checkpoint is gone).",
    )
    for stage in ("clip", "scorer", "vae", "decoder", "unet"):
        parser.add_argument(
            f"--{stage}-steps", type=int, default=None, help=f"Set the {stage} stage's steps."
        )
    args = parser.parse_args()
    deadline = Deadline(args.minutes)
    deadline.stop_on_signals()
    lane = f"[{args.lane}] " if args.lane else ""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {lane}%(name)s %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    overrides = json.loads(args.config.read_text())
    config = load_config(args.run_dir, overrides)
    set_steps(config, args, args.run_dir)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stages {unknown}; choose from {', '.join(STAGES)}")
    from imagineer.pocket.pipeline import reuse_generator_parts, reuse_scorer, run

    if args.reuse_unet_step is not None and args.reuse is None:
        parser.error("--reuse-unet-step needs --reuse GENERATOR_DIR")
    if args.reuse is not None:
        reuse_generator_parts(args.reuse, args.run_dir, args.reuse_unet_step)
    if args.reuse_scorer is not None:
        reuse_scorer(args.reuse_scorer, config, args.run_dir)
    if args.lanes == 1 or args.threads < 2:
        run(config, stages, args.run_dir, args.out, deadline, args.pool_part)
    else:
        run_in_lanes(config, stages, args, deadline)


def run_in_lanes(
    config: TrainConfig, stages: list[str], args: argparse.Namespace, deadline: Deadline
) -> None:
    """The stages in lanes of child processes (``lanes.py``), after rendering the data once."""
    from imagineer.pocket.datasets import cached_renders
    from imagineer.pocket.lanes import LaneRunner, child_command, plan
    from imagineer.pocket.world import load_world

    world = load_world()  # the children load these renders instead of racing to make them
    cached_renders(args.run_dir / "data", config.n_scenes, config.seed, world)
    cached_renders(args.run_dir / "data", config.n_held_out, config.seed + 1, world)
    groups = plan(stages, args.run_dir, judged=config.judged.steps > 0, parts=args.threads)

    def command(phase: Phase, threads: int) -> list[str]:
        return child_command(phase, threads, args.run_dir, args.out)

    LaneRunner(command, args.run_dir, deadline, args.threads).run(groups)


def _part(text: str) -> tuple[int, int]:
    """``--pool-part K/N``: part K (from 0) of N."""
    k, _, n = text.partition("/")
    if not (k.isdigit() and n.isdigit() and int(k) < int(n)):
        raise argparse.ArgumentTypeError(f"{text!r}: expected K/N with 0 <= K < N")
    return int(k), int(n)


if __name__ == "__main__":
    # Two busy-waiting OpenMP threads on a shared 2-core machine measured 4x slower than one;
    # passive waiting removes that (must be set before torch starts its thread pool).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    main()
