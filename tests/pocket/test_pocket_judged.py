"""The judged stage: the generator's renders of training captions, labelled by the judge, then a
resumable tune of the scorer that ranks each caption's right renders above its wrong ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from tiny_specs import TINY_CLIP, AfterChecks

from imagineer.pocket.analysis import analyze
from imagineer.pocket.checkpoints import Deadline
from imagineer.pocket.datasets import SWAP_KINDS, build_renders, render_seed, swap
from imagineer.pocket.judged import (
    JudgedPool,
    JudgedStage,
    build_judged_pool,
    fits,
    held_out_auc,
    pool_scenes,
    pool_wording,
    read_renders,
    tune_on_judged,
)
from imagineer.pocket.models import build_clip
from imagineer.pocket.paths import pocket_generator_dir
from imagineer.pocket.render import render_scene
from imagineer.pocket.train_clip import ClipStage, Wording
from imagineer.pocket.world import load_world


def test_a_render_fits_a_caption_exactly_when_the_caption_cannot_tell_its_scene_apart() -> None:
    """The label is the caption's own semantics: a render of a swapped scene fits a caption
    that does not mention what was swapped, and fails one that does."""
    world, clip, stage = load_world(), ClipStage(), JudgedStage()
    images, scenes = build_renders(60, 3, world)
    rng = np.random.default_rng(0)
    agree, kinds = [], {True: 0, False: 0}
    for index, (image, scene) in enumerate(zip(images, scenes, strict=True)):
        wording = pool_wording(rng, stage)
        assert fits(analyze(image, world), scene, wording, world, clip)  # its own render
        other = swap(scene, str(rng.choice(SWAP_KINDS)), rng, world)
        if other is None:
            continue
        same_text = wording.describe(other, world, clip) == wording.describe(scene, world, clip)
        render = render_scene(other, world, seed=render_seed(3, index))
        agree.append(fits(analyze(render, world), scene, wording, world, clip) == same_text)
        kinds[same_text] += 1
    assert kinds[True] >= 5 and kinds[False] >= 20, kinds  # both cases are exercised
    assert np.mean(agree) >= 0.95, np.mean(agree)

    full = Wording(seed=5, full=True, worded=False, sparse=False)
    two = swap(scenes[0], "count", rng, world)
    assert two is not None and len(two.objects) != len(scenes[0].objects)
    assert not fits(analyze(render_scene(two, world, seed=1), world), scenes[0], full, world, clip)


def test_judged_pool_is_built_in_chunks_and_resumes_without_rendering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = load_world()
    scenes = build_renders(6, 0, world)[1]
    stage = JudgedStage(steps=1, scenes=4, renders=2, chunk=2)
    args = (stage, scenes, world, ClipStage(), pocket_generator_dir(), tmp_path, 0)
    pool = build_judged_pool(*args, Deadline(None))
    assert pool is not None and len(pool) == 4
    assert pool.images.shape == (4, 2, 64, 64, 3) and pool.images.dtype == np.uint8
    assert pool.right.shape == (4, 2) and pool.right.dtype == bool
    assert sorted(p.name for p in tmp_path.iterdir()) == ["judged-00000.npz", "judged-00001.npz"]
    assert not np.array_equal(pool.images[0, 0], pool.images[0, 1])  # two seeds, two pictures
    # each label is the judge's reading of that very render
    rng = np.random.default_rng([0, 9, 0])  # chunk 0's stream
    wording = pool_wording(rng, stage)
    assert pool.captions[0] == wording.describe(scenes[0], world, ClipStage())
    read = fits(analyze(pool.images[0, 1], world), scenes[0], wording, world, ClipStage())
    assert read == pool.right[0, 1]

    import imagineer.generators as generators

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the pool was rendered again")

    monkeypatch.setattr(generators, "DiffusersGenerator", refuse)
    again = build_judged_pool(*args, Deadline(None))
    assert again is not None and np.array_equal(again.images, pool.images)
    assert again.captions == pool.captions and np.array_equal(again.right, pool.right)
    assert build_judged_pool(*args[:-2], tmp_path / "late", 0, Deadline(0)) is None


def _exact_pool(world, scenes, drawn=None):  # type: ignore[no-untyped-def]
    """A pool whose right renders are each scene's own and wrong ones its swaps' (the scene
    behind each render appended to ``drawn``)."""
    rng = np.random.default_rng(1)
    images, right, captions = [], [], []
    for index, scene in enumerate(scenes):
        wording = Wording(int(rng.integers(2**31)), True, False, False)
        others = [swap(scene, kind, rng, world) for kind in ("colour", "lighting", "style")]
        own = [scene, scene, *[o if o is not None else scene for o in others]]
        images.append([np.asarray(render_scene(s, world, seed=index)) for s in own])
        right.append([s == scene for s in own])
        captions.append(wording.describe(scene, world, ClipStage()))
        if drawn is not None:
            drawn += own
    return JudgedPool(captions, np.array(images), np.array(right))


def _unordered(scene):  # type: ignore[no-untyped-def]
    objects = sorted(o.model_dump_json() for o in scene.objects)
    return objects, scene.lighting, scene.style, sorted(scene.defects)


def test_pool_renders_are_captioned_with_what_the_judge_reads_in_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every render becomes right for its own reading; on exact renders the reading is the
    scene that drew them, whatever the pool's caption asked for."""
    world = load_world()
    drawn: list = []
    pool = _exact_pool(world, build_renders(6, 0, world)[1], drawn)
    blank = np.full((64, 64, 3), 128, dtype=np.uint8)
    pool.images[2, 3] = blank  # nothing to read: no scene
    cache = tmp_path / "reads.json"
    images, scenes = read_renders(pool, np.array([1, 2, 4]), world, cache)
    assert len(scenes) == len(images) and 13 <= len(scenes) <= 14  # of 15 renders, one blank
    assert not any(np.array_equal(image, blank) for image in images)
    wanted = [(i, r) for i in (1, 2, 4) for r in range(5)]
    matched = 0
    for image, scene in zip(images, scenes, strict=True):
        (i, r) = next((i, r) for i, r in wanted if np.array_equal(pool.images[i, r], image))
        matched += _unordered(scene) == _unordered(drawn[i * 5 + r])
    assert matched >= len(scenes) - 1, matched  # the judge's own accuracy: 98% or better
    assert len(json.loads(cache.read_text())) == 30  # the whole pool's readings, kept

    import imagineer.pocket.judged as judged

    monkeypatch.setattr(judged, "analyze", lambda *_: pytest.fail("read again"))
    again_images, again = read_renders(pool, np.array([1, 2, 4]), world, cache)
    assert again == scenes and np.array_equal(again_images, images)


@pytest.mark.parametrize("read_share", [0.0, 0.34])
def test_judged_tuning_trains_resumes_exactly_and_stops_at_the_deadline(
    tmp_path: Path, read_share: float
) -> None:
    world = load_world()
    data, held_out = build_renders(12, 0, world), build_renders(4, 1, world)
    pool = _exact_pool(world, data[1][:4])
    assert list(pool.usable()) == [0, 1, 2, 3]
    assert list(pool.usable(0.5)) == [0, 2] and list(pool.usable(0.5, held_out=True)) == [1, 3]
    assert list(pool.usable(0.25, held_out=True)) == [3]
    clip = ClipStage(negatives=1)
    stage = JudgedStage(
        steps=2, batch=6, pool_share=0.34, negatives=2, save_every=1, read_share=read_share
    )

    def fresh() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_clip(TINY_CLIP)

    start = {k: v.clone() for k, v in fresh().state_dict().items()}
    args = (pool, data, held_out, world)
    straight = tune_on_judged(fresh(), clip, stage, *args, tmp_path / "a", 0, Deadline(None))
    assert straight is not None
    assert any(not torch.equal(start[k], v) for k, v in straight.state_dict().items())
    assert tune_on_judged(fresh(), clip, stage, *args, tmp_path / "b", 0, AfterChecks(1)) is None
    resumed = tune_on_judged(fresh(), clip, stage, *args, tmp_path / "b", 0, Deadline(None))
    for (name, a), b in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name

    auc = held_out_auc(straight, open_clip.get_tokenizer("ViT-B-32"), pool, np.arange(4))
    assert 0.0 <= auc <= 1.0

    hopeless = JudgedPool(pool.captions, pool.images, np.zeros_like(pool.right))
    with pytest.raises(ValueError, match="no caption with both right and wrong renders"):
        tune_on_judged(fresh(), clip, stage, hopeless, *args[1:], tmp_path / "c", 0, Deadline(0))


def test_a_run_reuses_an_exported_scorer_and_tunes_it_on_judged_renders(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from imagineer.pocket.export import export_scorer
    from imagineer.pocket.pipeline import export_scorer_checkpoint, reuse_scorer, run
    from imagineer.pocket.train import TrainConfig

    torch.manual_seed(0)
    export_scorer(build_clip(TINY_CLIP).eval(), TINY_CLIP, tmp_path / "exported")
    judged = JudgedStage(steps=2, scenes=4, renders=2, chunk=4, batch=6, save_every=1)
    config = TrainConfig(
        n_scenes=100,
        n_held_out=10,
        clip_spec=TINY_CLIP,
        clip=ClipStage(steps=5, batch=4, negatives=1),
        judged=judged,
    )
    run_dir, out = tmp_path / "run", tmp_path / "out"
    reuse_scorer(tmp_path / "exported", config, run_dir)
    state = torch.load(run_dir / "clip.pt", weights_only=False)
    assert state["step"] == 5 and state["optimiser"] is None
    weights = load_file(str(tmp_path / "exported" / "open_clip_model.safetensors"))
    for name, value in state["model"].items():
        assert value.dtype == torch.float32 and torch.equal(value, weights[name].float()), name
    record = json.loads((run_dir / "reused.json").read_text())
    assert record["scorer"]["from"] == str(tmp_path / "exported")

    run(config, ["judged"], run_dir, out, Deadline(None))  # no generator exported yet: skipped
    assert not (out / "scorer").exists()
    out.mkdir()
    (out / "generator").symlink_to(pocket_generator_dir())
    run(config, ["judged"], run_dir, out, Deadline(None))
    assert torch.load(run_dir / "judged.pt", weights_only=False)["step"] == 2
    exported = (out / "scorer" / "open_clip_model.safetensors").read_bytes()
    assert exported != (tmp_path / "exported" / "open_clip_model.safetensors").read_bytes()
    export_scorer_checkpoint(config, run_dir, tmp_path / "again")  # --stages export: judged.pt
    assert (tmp_path / "again" / "scorer" / "open_clip_model.safetensors").read_bytes() == exported

    reuse_scorer(tmp_path / "exported", config, run_dir)  # a resumed run: nothing changes
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "clip.pt").write_bytes((run_dir / "clip.pt").read_bytes())
    with pytest.raises(FileExistsError):  # never overwrite a run's own scorer
        reuse_scorer(tmp_path / "exported", config, tmp_path / "own")
    other = config.model_copy(update={"clip_spec": TINY_CLIP.model_copy(update={"embed_dim": 8})})
    with pytest.raises(ValueError, match="model_cfg differs"):
        reuse_scorer(tmp_path / "exported", other, tmp_path / "third")


def test_sparse_pool_captions_are_drawn_only_when_asked() -> None:
    plain, sparse = JudgedStage(), JudgedStage(p_sparse=1.0)
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert not any(pool_wording(a, plain).sparse for _ in range(20))
    assert all(pool_wording(b, sparse).sparse for _ in range(20))
    # without sparse captions the stream draws nothing extra: recipes without them replay
    c, d = np.random.default_rng(4), np.random.default_rng(4)
    for _ in range(5):
        pool_wording(c, plain)
        d.integers(2**31), d.random()  # a seed and the captioner: two draws, no more
    assert c.random() == d.random()
    world, clip = load_world(), ClipStage()
    scenes = build_renders(40, 2, world)[1]
    e, f = np.random.default_rng(5), np.random.default_rng(5)
    long = np.mean([len(pool_wording(e, plain).describe(s, world, clip)) for s in scenes])
    short = np.mean([len(pool_wording(f, sparse).describe(s, world, clip)) for s in scenes])
    assert short < 0.7 * long, (short, long)


def test_pool_scenes_take_the_first_of_each_kind_at_the_asked_share() -> None:
    scenes = build_renders(60, 4, load_world())[1]
    assert pool_scenes(JudgedStage(scenes=10), scenes) == scenes[:10]
    picked = pool_scenes(JudgedStage(scenes=8, p_multi=0.75), scenes)
    several = [s for s in scenes if len(s.objects) > 1]
    single = [s for s in scenes if len(s.objects) == 1]
    assert picked == several[:6] + single[:2]
    with pytest.raises(ValueError, match="too few scenes"):
        pool_scenes(JudgedStage(scenes=len(single) + 1, p_multi=0.0), scenes)
    with pytest.raises(ValueError, match="61 > 60 training scenes"):
        pool_scenes(JudgedStage(scenes=61), scenes)
    with pytest.raises(ValueError, match="leave no clean scene in a batch of 8"):
        JudgedStage(batch=8, pool_share=0.5, read_share=0.5)
