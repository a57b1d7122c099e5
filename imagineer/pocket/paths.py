"""Where the bundled pocket models live, and the errors that say how to rebuild them.

Each model directory carries ``manifest.json`` (written by the export: every file's size and
sha256), so a missing, truncated or altered weight file is caught before diffusers or open_clip
read it, with a message that names the file and how to get it back.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from imagineer.errors import CorruptWeights, ModelNotAvailable

WORLD_FILE = Path(__file__).parent / "world.json"
MODELS_DIR = Path(__file__).parent / "models"
GENERATOR_DIR = MODELS_DIR / "generator"
SCORER_DIR = MODELS_DIR / "scorer"
MANIFEST = "manifest.json"
REBUILD = (
    "The pocket models ship with imagineer: restore them with `git checkout -- "
    "imagineer/pocket/models` or a fresh clone, or rebuild them with `python -m "
    "imagineer.pocket.train` (about 3 hours on 2 CPU cores; see docs/pocket-training.md). "
    "Meanwhile, `imagineer pocket build-tiny` makes untrained stand-ins to pass with "
    "--model/--scorer."
)


def pocket_generator_dir() -> Path:
    """The bundled pocket generator (a diffusers pipeline directory), checked file by file.

    Raises:
        ModelNotAvailable: It, or one of its files, is missing; says how to rebuild it.
        CorruptWeights: A file differs from the manifest; says how to rebuild it.
    """
    return verified(GENERATOR_DIR, "pocket generator")


def pocket_scorer_dir() -> Path:
    """The bundled pocket scorer (an open_clip model in hub layout), checked file by file.

    Raises:
        ModelNotAvailable: It, or one of its files, is missing; says how to rebuild it.
        CorruptWeights: A file differs from the manifest; says how to rebuild it.
    """
    return verified(SCORER_DIR, "pocket scorer")


def file_digest(path: Path) -> str:
    """The sha256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: Path) -> Path:
    """Record the size and sha256 of every file under ``directory`` in its ``manifest.json``."""
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)
    entries = {
        p.relative_to(directory).as_posix(): {"bytes": p.stat().st_size, "sha256": file_digest(p)}
        for p in files
    }
    path = directory / MANIFEST
    path.write_text(json.dumps({"files": entries}, indent=2) + "\n")
    return path


def verified(directory: Path, name: str) -> Path:
    """``directory`` once every file its manifest lists is present with the recorded content.

    Raises:
        ModelNotAvailable: The manifest or a file it lists is missing.
        CorruptWeights: A file's size or sha256 differs from the manifest, or the manifest is
            unreadable.
    """
    manifest = directory / MANIFEST
    if not manifest.is_file():
        raise ModelNotAvailable(name, [str(directory)], REBUILD)
    try:
        files = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CorruptWeights(f"{name}: {manifest} is unreadable ({error}). {REBUILD}") from error
    for relative, expected in files.items():
        path = directory / relative
        if not path.is_file():
            raise ModelNotAvailable(f"{name} file {relative}", [str(path)], REBUILD)
        if path.stat().st_size != expected["bytes"] or file_digest(path) != expected["sha256"]:
            raise CorruptWeights(
                f"{name}: {path} is damaged (its size or sha256 differs from {manifest}). {REBUILD}"
            )
    return directory
