"""The bundled pocket models are checked file by file; damage is a typed error saying how to
rebuild them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from imagineer.errors import CorruptWeights, ModelNotAvailable
from imagineer.pocket.paths import (
    GENERATOR_DIR,
    SCORER_DIR,
    pocket_generator_dir,
    pocket_scorer_dir,
    verified,
)


def test_bundled_models_match_their_manifests() -> None:
    assert pocket_generator_dir() == GENERATOR_DIR
    assert pocket_scorer_dir() == SCORER_DIR


@pytest.fixture()
def scorer_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SCORER_DIR, tmp_path / "scorer"))


def test_truncated_weights_raise_corrupt_weights_with_the_rebuild_command(
    scorer_copy: Path,
) -> None:
    weights = scorer_copy / "open_clip_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CorruptWeights, match=r"open_clip_model\.safetensors") as error:
        verified(scorer_copy, "pocket scorer")
    assert "python -m imagineer.pocket.train" in str(error.value)


def test_a_flipped_byte_is_caught(scorer_copy: Path) -> None:
    weights = scorer_copy / "open_clip_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size, different content
    weights.write_bytes(bytes(data))
    with pytest.raises(CorruptWeights, match="damaged"):
        verified(scorer_copy, "pocket scorer")


def test_missing_weights_raise_model_not_available(scorer_copy: Path) -> None:
    (scorer_copy / "open_clip_model.safetensors").unlink()
    with pytest.raises(ModelNotAvailable, match=r"open_clip_model\.safetensors") as error:
        verified(scorer_copy, "pocket scorer")
    assert "git checkout" in error.value.fix


def test_missing_manifest_or_directory_raises_model_not_available(
    scorer_copy: Path, tmp_path: Path
) -> None:
    (scorer_copy / "manifest.json").unlink()
    with pytest.raises(ModelNotAvailable):
        verified(scorer_copy, "pocket scorer")
    with pytest.raises(ModelNotAvailable):
        verified(tmp_path / "nowhere", "pocket generator")


def test_unreadable_manifest_raises_corrupt_weights(scorer_copy: Path) -> None:
    (scorer_copy / "manifest.json").write_text("{not json")
    with pytest.raises(CorruptWeights, match=r"manifest\.json"):
        verified(scorer_copy, "pocket scorer")
