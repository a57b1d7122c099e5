"""The scorer-adaptation stage: img2img pool with exact labels, then a resumable tune."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_specs import TINY_CLIP, AfterChecks

from imagineer.pocket.adapt_clip import AdaptStage, adapt_clip, build_pool, load_pool
from imagineer.pocket.checkpoints import Deadline
from imagineer.pocket.datasets import build_renders
from imagineer.pocket.models import build_clip
from imagineer.pocket.paths import pocket_generator_dir
from imagineer.pocket.train_clip import ClipStage
from imagineer.pocket.world import load_world


def test_pool_keeps_content_and_resumes_without_rendering_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = load_world()
    data = build_renders(6, 0, world)
    stage = AdaptStage(steps=1, scenes=4, swaps=2, chunk=2, strength=(0.3, 0.3))
    pool = build_pool(stage, data, world, pocket_generator_dir(), tmp_path, 0, Deadline(None))
    assert pool is not None
    assert pool.images.shape == (4, 3, 64, 64, 3) and pool.images.dtype == np.uint8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool-00000.npz", "pool-00001.npz"]
    for index, changed in enumerate(pool.swapped):
        assert changed and all(scene != data[1][index] for scene in changed)
        assert pool.valid[index].sum() == 1 + len(changed)
    # img2img at a low strength keeps the picture close to its render
    error = np.abs(pool.images[:, 0].astype(int) - data[0][:4].astype(int)).mean()
    assert error < 40, error

    # a second run reads the saved chunks and never loads the generator
    import imagineer.pocket.adapt_clip as adapt

    def refuse(_: Path) -> None:
        raise AssertionError("the pool was built again")

    monkeypatch.setattr(adapt, "img2img_pipeline", refuse)
    again = build_pool(stage, data, world, pocket_generator_dir(), tmp_path, 0, Deadline(None))
    assert again is not None and np.array_equal(again.images, pool.images)
    assert again.swapped == pool.swapped


def test_adapt_trains_resumes_exactly_and_stops_at_the_deadline(tmp_path: Path) -> None:
    world = load_world()
    data, held_out = build_renders(12, 0, world), build_renders(4, 1, world)
    stage = AdaptStage(steps=2, scenes=4, swaps=2, chunk=4, batch=6, pool_share=0.5, save_every=1)
    pool = build_pool(
        stage, data, world, pocket_generator_dir(), tmp_path / "pool", 0, Deadline(None)
    )
    assert pool is not None
    clip = ClipStage(negatives=2)
    # full captions mention everything, so every swapped copy is a negative of its caption
    from imagineer.pocket.adapt_clip import _pool_negatives
    from imagineer.pocket.train_clip import caption_batch

    pooled = np.arange(4)
    full = ClipStage(p_full=1.0)
    batch = caption_batch([data[1][i] for i in pooled], np.random.default_rng(0), world, full)
    negatives, owners = _pool_negatives(batch, pooled, 0, pool, world, full)
    assert owners == [i for i in pooled for _ in pool.swapped[i]] and len(negatives) == len(owners)
    assert np.array_equal(negatives[0], pool.images[0, 1])

    def fresh() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_clip(TINY_CLIP)

    start = {k: v.clone() for k, v in fresh().state_dict().items()}
    straight = adapt_clip(
        fresh(), clip, stage, pool, data, held_out, world, tmp_path / "a", 0, Deadline(None)
    )
    assert straight is not None
    assert any(not torch.equal(start[k], v) for k, v in straight.state_dict().items())

    half = adapt_clip(
        fresh(), clip, stage, pool, data, held_out, world, tmp_path / "b", 0, AfterChecks(1)
    )
    assert half is None  # stopped after one step, at its checkpoint
    resumed = adapt_clip(
        fresh(), clip, stage, pool, data, held_out, world, tmp_path / "b", 0, Deadline(None)
    )
    for (name, a), b in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name

    stopped = adapt_clip(
        fresh(), clip, stage, pool, data, held_out, world, tmp_path / "c", 0, Deadline(0)
    )
    assert stopped is None and not (tmp_path / "c" / "adapt.pt").exists()


def test_bad_strength_range_or_swap_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="strength"):
        AdaptStage(strength=(0.7, 0.2))
    with pytest.raises(ValueError, match="strength"):
        AdaptStage(strength=(0.0, 0.5))
    with pytest.raises(ValueError, match=r"unknown swap kinds.*'hue'"):
        AdaptStage(kinds=("colour", "hue"))


def test_load_pool_reads_chunks_in_order(tmp_path: Path) -> None:
    world = load_world()
    data = build_renders(4, 0, world)
    stage = AdaptStage(steps=1, scenes=4, swaps=1, chunk=1, strength=(0.2, 0.2))
    pool = build_pool(stage, data, world, pocket_generator_dir(), tmp_path, 0, Deadline(None))
    assert pool is not None
    reread = load_pool(tmp_path, 4)
    assert np.array_equal(reread.images, pool.images) and reread.swapped == pool.swapped
