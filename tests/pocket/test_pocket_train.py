"""Resumable training: a run split at a checkpoint ends exactly where an unbroken run ends."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_specs import TINY_CLIP as TINY

from imagineer.pocket.checkpoints import Deadline
from imagineer.pocket.datasets import build_renders
from imagineer.pocket.train_clip import ClipStage, RankTune, train_clip
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


def test_ranking_phase_continues_a_finished_main_phase_exactly(tmp_path: Path) -> None:
    # As the pipeline runs it: the main phase first (no tune), then the same stage with a tune.
    world = load_world()
    data, held_out = build_renders(12, 0, world), build_renders(4, 1, world)

    def stage(tune_steps: int) -> ClipStage:
        tune = RankTune(steps=tune_steps, warmup=0, lr=1e-3, image_negatives=2)
        return ClipStage(steps=2, batch=4, negatives=2, save_every=1, eval_every=100, tune=tune)

    def train(run_dir: Path, tune_steps: int) -> torch.nn.Module:
        model = train_clip(
            TINY, stage(tune_steps), data, held_out, world, run_dir, 0, Deadline(None)
        )
        assert model is not None
        return model

    straight = train(tmp_path / "straight", 2)
    untuned = train(tmp_path / "split", 0)
    untuned_state = {k: v.clone() for k, v in untuned.state_dict().items()}
    resumed = train(tmp_path / "split", 2)
    assert torch.load(tmp_path / "split" / "clip.pt", weights_only=True)["step"] == 4
    for (name, a), b in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert any(not torch.equal(untuned_state[k], v) for k, v in resumed.state_dict().items())


def test_own_negatives_loss_ranks_the_match_against_its_own_negatives_only() -> None:
    from imagineer.pocket.train_clip import _own_negatives_loss

    anchor = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    # anchor 0 has two negatives identical to its match, anchor 2 one; anchor 1 none
    candidates = torch.cat([anchor, anchor[[0, 0, 2]]])
    loss = _own_negatives_loss(anchor, candidates, [0, 0, 2], torch.tensor(10.0))
    expected = (torch.log(torch.tensor(3.0)) + 0 + torch.log(torch.tensor(2.0))) / 3
    assert torch.isclose(loss, expected, atol=1e-6)
    # a negative that matches the anchor less than its match costs less than log 2
    far = torch.cat([anchor, -anchor[[1]]])
    assert _own_negatives_loss(anchor, far, [1], torch.tensor(10.0)) < 1e-3


def test_swapped_renders_change_only_what_the_caption_mentions() -> None:
    import numpy as np

    from imagineer.pocket.datasets import render_seed
    from imagineer.pocket.render import render_scene
    from imagineer.pocket.train_clip import caption_batch, swapped_renders

    world = load_world()
    images, scenes = build_renders(6, 5, world)
    # the render seed reproduces the training render exactly
    for index, scene in enumerate(scenes):
        assert np.array_equal(
            np.asarray(render_scene(scene, world, seed=render_seed(5, index))), images[index]
        )
    index = np.arange(6)
    stage = ClipStage(negatives=3, p_full=0.5, p_world_caption=0.5)
    batch = caption_batch(scenes, np.random.default_rng(0), world, stage)
    pictures, owners = swapped_renders(batch, index, 5, world, per_caption=2)
    assert owners == [i for i, own in enumerate(batch.swapped) for _ in own[:2]]
    assert len(pictures) == len(owners) >= 6
    for picture, owner in zip(pictures, owners, strict=True):
        assert not np.array_equal(picture, images[owner])
    for text, own, changed in zip(batch.positives, batch.negatives, batch.swapped, strict=True):
        assert len(own) == len(changed) and text not in own


def test_a_warm_restart_replays_a_finished_run_resumed_with_more_steps(tmp_path: Path) -> None:
    # How the bundled scorer was made: a run finished (lr cooled to zero), then resumed with
    # ``--clip-steps`` more. A recipe with ``restarts`` at the old end is that run in one go.
    world = load_world()
    data, held_out = build_renders(12, 0, world), build_renders(4, 1, world)

    def train(run_dir: Path, steps: int, restarts: tuple[int, ...] = ()) -> torch.nn.Module:
        stage = ClipStage(
            steps=steps,
            batch=4,
            negatives=1,
            warmup=0,
            cooldown=2,
            restarts=restarts,
            save_every=1,
            eval_every=100,
            lr=1e-3,
        )
        model = train_clip(TINY, stage, data, held_out, world, run_dir, 0, Deadline(None))
        assert model is not None
        return model

    straight = train(tmp_path / "straight", 6, restarts=(3,))
    train(tmp_path / "split", 3)
    resumed = train(tmp_path / "split", 6)
    no_restart = train(tmp_path / "plain", 6)
    for (name, a), b in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert any(  # the restart changes the schedule, so it changes the weights
        not torch.equal(a, b)
        for a, b in zip(
            straight.state_dict().values(), no_restart.state_dict().values(), strict=True
        )
    )


def test_restarts_must_increase_inside_the_stage() -> None:
    assert ClipStage(steps=10, restarts=(3, 6)).cycle_end(3) == 6
    assert ClipStage(steps=10, restarts=(3, 6)).cycle_end(7) == 10
    for bad in ((6, 3), (0,), (10,), (3, 3)):
        with pytest.raises(ValueError, match="restarts must increase"):
            ClipStage(steps=10, restarts=bad)


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
        drawn = caption_batch(scenes, np.random.default_rng(1), world, stage)
        return drawn.positives, drawn.negatives

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
        positives = caption_batch(scenes, np.random.default_rng(3), world, stage).positives
        return sum(len(t.split()) for t in positives) / len(positives)

    assert words(p_sparse=1.0) < 0.75 * words(p_sparse=0.0)
    # p_sparse = 0 draws nothing extra, so recipes from before it replay their captions (this
    # one was drawn by the code before p_sparse existed)
    stage = ClipStage(p_world_caption=0.5)
    positives = caption_batch(scenes[:3], np.random.default_rng(3), world, stage).positives
    assert positives[0] == (
        "blurry, a small purple pyramid shape on the right, flat illustration, neon lighting"
    )
