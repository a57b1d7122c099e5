"""Generators: prompts in, candidate images out (diffusers today; remote APIs plug in here)."""

from imagineer.generators.base import (
    Candidate,
    Generator,
    PromptWindow,
    Region,
    RenderParams,
    derive_seeds,
)
from imagineer.generators.diffusers_generator import (
    DiffusersConfig,
    DiffusersGenerator,
    scheduler_names,
)

__all__ = [
    "Candidate",
    "DiffusersConfig",
    "DiffusersGenerator",
    "Generator",
    "PromptWindow",
    "Region",
    "RenderParams",
    "derive_seeds",
    "scheduler_names",
]
