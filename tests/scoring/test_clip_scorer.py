"""ClipScorer on a tiny real open_clip model, loaded the ways users load theirs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagineer.errors import CorruptWeights, InvalidInput, ModelNotAvailable
from imagineer.pocket.tiny import TINY_CLIP_NAME
from imagineer.scoring import ClipScorer, ClipScorerConfig


@pytest.fixture(scope="module")
def scorer(tiny_clip_dir: Path) -> ClipScorer:
    return ClipScorer(str(tiny_clip_dir))


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    noise = [Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)) for _ in range(3)]
    return [Image.new("RGB", (64, 64), "red"), Image.new("L", (20, 30), 200), *noise]


def test_scores_have_the_documented_shapes_and_ranges(
    scorer: ClipScorer, images: list[Image.Image]
) -> None:
    scores = scorer.score(images, "a red square", concepts=["red", "square", "red"])
    assert len(scores) == len(images)
    for score in scores:
        assert -1.0 <= score.cosine <= 1.0
        assert score.clip_score == pytest.approx(2.5 * max(score.cosine, 0.0))
        assert list(score.concepts) == ["red", "square"]
        assert all(-1.0 <= v <= 1.0 for v in score.concepts.values())
    assert len({round(s.cosine, 6) for s in scores}) > 1, "different images, different scores"


def test_text_embeddings_are_cached_by_string(
    scorer: ClipScorer, images: list[Image.Image]
) -> None:
    scorer.score(images, "a cached prompt", concepts=["cached concept"])
    before = scorer.texts_encoded
    scorer.score(images[:2], "a cached prompt", concepts=["cached concept"])
    assert scorer.texts_encoded == before, "a second call must encode no text"
    scorer.score(images[:2], "a cached prompt", concepts=["cached concept", "a new one"])
    assert scorer.texts_encoded == before + 1


def test_each_call_runs_the_image_tower_once(scorer: ClipScorer, images: list[Image.Image]) -> None:
    before = scorer.loaded.image_batches
    scorer.score(images, "one pass", concepts=["a", "b", "c"])
    assert scorer.loaded.image_batches == before + 1


def test_batched_scores_equal_one_by_one_scores(
    scorer: ClipScorer, images: list[Image.Image]
) -> None:
    texts = [f"prompt {i}" for i in range(len(images))]
    batched = scorer.score(images, texts, concepts=["red"])
    for image, text, together in zip(images, texts, batched, strict=True):
        alone = scorer.score([image], text, concepts=["red"])[0]
        assert alone.cosine == pytest.approx(together.cosine, abs=1e-5)
        assert alone.concepts["red"] == pytest.approx(together.concepts["red"], abs=1e-5)


def test_concept_scores_equal_scoring_against_the_concept_itself(
    scorer: ClipScorer, images: list[Image.Image]
) -> None:
    scores = scorer.score(images, "a red square", concepts=["snow", "fox"])
    for concept in ("snow", "fox"):
        direct = scorer.score(images, concept)
        for combined, alone in zip(scores, direct, strict=True):
            assert combined.concepts[concept] == pytest.approx(alone.cosine, abs=1e-5)


def test_contrast_is_the_softmax_over_the_text_and_its_foils(
    scorer: ClipScorer, images: list[Image.Image]
) -> None:
    foils = ["a blue square", "a red circle"]
    scores = scorer.score(images, "a red square", foils=[*foils, "a red square"])
    scale = float(scorer.loaded.model.logit_scale.exp().clamp(max=100))
    for image, score in zip(images, scores, strict=True):
        cosines = [scorer.score([image], t)[0].cosine for t in ("a red square", *foils)]
        logits = scale * np.array(cosines)
        expected = np.exp(logits[0] - logits.max()) / np.exp(logits - logits.max()).sum()
        assert score.contrast == pytest.approx(expected, abs=1e-4)  # its own text is no foil
    assert all(s.contrast is None for s in scorer.score(images, "a red square"))
    with pytest.raises(InvalidInput, match="foil"):
        scorer.score(images, "a red square", foils=[" "])


def test_registered_config_and_checkpoint_load_the_same_model(
    scorer: ClipScorer, tiny_clip_dir: Path, images: list[Image.Image]
) -> None:
    config = ClipScorerConfig(
        model=f"{TINY_CLIP_NAME}:{tiny_clip_dir / 'open_clip_model.safetensors'}",
        model_config_file=str(tiny_clip_dir / f"{TINY_CLIP_NAME}.json"),
    )
    registered = ClipScorer(config).score(images, "a red square")
    local_dir = scorer.score(images, "a red square")
    for a, b in zip(registered, local_dir, strict=True):
        assert a.cosine == pytest.approx(b.cosine, abs=1e-5)


@pytest.mark.parametrize(
    ("model", "error", "message"),
    [
        ("ViT-B-33:openai", InvalidInput, r"unknown open_clip model 'ViT-B-33'.*ViT-B-32"),
        ("ViT-B-32:no_such_tag", InvalidInput, r"unknown tag 'no_such_tag'.*laion2b_s34b_b79k"),
        ("ViT-B-32", InvalidInput, "names no weights"),
        ("ViT-B-32:/no/such/weights.safetensors", ModelNotAvailable, "no/such/weights"),
        ("./no-such-dir", ModelNotAvailable, "no-such-dir"),
    ],
)
def test_bad_model_specs_raise_typed_errors(model: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        _ = ClipScorer(model).loaded


def test_known_tag_not_cached_offline_raises_model_not_available() -> None:
    with pytest.raises(ModelNotAvailable, match="ViT-B-32:laion2b_s34b_b79k") as caught:
        _ = ClipScorer("ViT-B-32:laion2b_s34b_b79k").loaded
    assert caught.value.__cause__ is not None


def test_unreadable_checkpoint_raises_corrupt_weights(tiny_clip_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-clip"
    shutil.copytree(tiny_clip_dir, broken)
    (broken / "open_clip_model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CorruptWeights, match="broken-clip"):
        _ = ClipScorer(str(broken)).loaded


@pytest.mark.parametrize(
    ("images_arg", "text", "concepts", "message"),
    [
        ([], "a", (), "no images"),
        ([Image.new("RGB", (8, 8))], "  ", (), "text must be non-empty"),
        ([Image.new("RGB", (8, 8))], ["a", "b"], (), "got 2 texts for 1 images"),
        ([Image.new("RGB", (8, 8))], "a", ["ok", ""], "concept phrases must be non-empty"),
    ],
)
def test_bad_scoring_input_raises_invalid_input(
    scorer: ClipScorer, images_arg, text, concepts, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        scorer.score(images_arg, text, concepts)
