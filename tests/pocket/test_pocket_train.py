"""Resumable training: a run split at a checkpoint ends exactly where an unbroken run ends."""

from __future__ import annotations

from pathlib import Path

import torch
from tiny_specs import TINY_CLIP as TINY

from imagineer.pocket.checkpoints import Deadline
from imagineer.pocket.datasets import build_renders
from imagineer.pocket.train_clip import ClipStage, train_clip
from imagineer.pocket.world import load_world


def _train(run_dir: Path, steps: int, data, held_out) -> torch.nn.Module:  # type: ignore[no-untyped-def]
    stage = ClipStage(steps=steps, batch=4, negatives=2, save_every=1, eval_every=100)
    return train_clip(TINY, stage, data, held_out, load_world(), run_dir, 0, Deadline(None))


def test_resumed_clip_run_matches_an_unbroken_one(tmp_path: Path) -> None:
    world = load_world()
    data, held_out = build_renders(12, 0, world), build_renders(4, 1, world)
    straight = _train(tmp_path / "straight", 4, data, held_out)
    assert _train(tmp_path / "split", 2, data, held_out) is not None
    resumed = _train(tmp_path / "split", 4, data, held_out)
    for (name, a), b in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_deadline_stops_at_a_checkpoint(tmp_path: Path) -> None:
    world = load_world()
    data, held_out = build_renders(8, 0, world), build_renders(4, 1, world)
    stage = ClipStage(steps=50, batch=4, negatives=1, save_every=100, eval_every=100)
    model = train_clip(TINY, stage, data, held_out, world, tmp_path, 0, Deadline(0))
    assert model is None and not (tmp_path / "clip.pt").exists()  # nothing ran, nothing saved


def test_learning_rate_warms_up_holds_and_cools_down_to_zero() -> None:
    from imagineer.pocket.checkpoints import set_warmup_lr

    optimiser = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0)

    def lr(step: int, cooldown: int) -> float:
        set_warmup_lr(optimiser, 1.0, 10, step, steps=100, cooldown=cooldown)
        return float(optimiser.param_groups[0]["lr"])

    assert [lr(s, 0) for s in (0, 4, 9, 50, 99)] == [0.1, 0.5, 1.0, 1.0, 1.0]
    assert [lr(s, 20) for s in (50, 80, 90, 99)] == [1.0, 1.0, 0.5, 0.05]


def test_clip_captions_mix_in_the_world_captioner_and_negatives_are_worded_alike() -> None:
    import numpy as np

    from imagineer.pocket.datasets import training_scene
    from imagineer.pocket.train_clip import caption_batch

    world = load_world()
    scene_rng = np.random.default_rng(0)
    scenes = [training_scene(scene_rng, world) for _ in range(200)]
    # Only captions.caption joins two objects by a relation or a pair phrase; describe never does.
    # (One-word joiners such as "under" also occur in lighting phrases: "under studio lights".)
    phrases = [p for ps in world.relation_phrases.values() for p in ps] + [
        p.replace("{a}", "").replace("{b}", "").strip() for p in world.pair_phrases.values()
    ]
    joiners = [p for p in phrases if " " in p]
    assert len(joiners) >= 4

    def joined(texts: list[str]) -> int:
        return sum(any(f" {j} " in f" {t} " for j in joiners) for t in texts)

    def batch(p_world_caption: float) -> tuple[list[str], list[list[str]]]:
        stage = ClipStage(p_world_caption=p_world_caption, negatives=3, p_full=0.0)
        return caption_batch(scenes, np.random.default_rng(1), world, stage)

    plain, plain_negatives = batch(0.0)
    worded, worded_negatives = batch(1.0)
    assert joined(plain) == 0 and joined([t for own in plain_negatives for t in own]) == 0
    assert joined(worded) >= 5
    # A colour or style swap keeps the sentence: a joined caption has joined negatives.
    for text, own in zip(worded, worded_negatives, strict=True):
        assert own and text not in own
        if joined([text]):
            assert joined(own) >= 1, (text, own)


def test_sparse_captions_say_less_and_leave_other_recipes_unchanged() -> None:
    import numpy as np

    from imagineer.pocket.datasets import training_scene
    from imagineer.pocket.train_clip import caption_batch

    world = load_world()
    scene_rng = np.random.default_rng(2)
    scenes = [training_scene(scene_rng, world) for _ in range(120)]

    def words(**knobs: float) -> float:
        stage = ClipStage(p_full=0.0, p_world_caption=0.5, **knobs)
        positives, _ = caption_batch(scenes, np.random.default_rng(3), world, stage)
        return sum(len(t.split()) for t in positives) / len(positives)

    assert words(p_sparse=1.0) < 0.75 * words(p_sparse=0.0)
    # p_sparse = 0 draws nothing extra, so recipes from before it replay their captions (this
    # one was drawn by the code before p_sparse existed)
    stage = ClipStage(p_world_caption=0.5)
    positives, _ = caption_batch(scenes[:3], np.random.default_rng(3), world, stage)
    assert positives[0] == (
        "blurry, a small purple pyramid shape on the right, flat illustration, neon lighting"
    )
