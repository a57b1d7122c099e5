"""Where the bundled pocket models live, and the error that says how to rebuild them."""

from __future__ import annotations

from pathlib import Path

from imagineer.errors import ModelNotAvailable

WORLD_FILE = Path(__file__).parent / "world.json"
MODELS_DIR = Path(__file__).parent / "models"
GENERATOR_DIR = MODELS_DIR / "generator"
SCORER_DIR = MODELS_DIR / "scorer"
REBUILD = (
    "The pocket models ship with imagineer; reinstall from a fresh clone, or rebuild them with "
    "`python -m imagineer.pocket.train` (see README). Until then, `imagineer pocket build-tiny` "
    "makes untrained stand-ins to pass with --model/--scorer."
)


def pocket_generator_dir() -> Path:
    """The bundled pocket generator (a diffusers pipeline directory).

    Raises:
        ModelNotAvailable: It is missing, with how to rebuild it.
    """
    if not (GENERATOR_DIR / "model_index.json").is_file():
        raise ModelNotAvailable("pocket generator", [str(GENERATOR_DIR)], REBUILD)
    return GENERATOR_DIR


def pocket_scorer_dir() -> Path:
    """The bundled pocket scorer (an open_clip model in open_clip's hub layout).

    Raises:
        ModelNotAvailable: It is missing, with how to rebuild it.
    """
    if not (SCORER_DIR / "open_clip_config.json").is_file():
        raise ModelNotAvailable("pocket scorer", [str(SCORER_DIR)], REBUILD)
    return SCORER_DIR
