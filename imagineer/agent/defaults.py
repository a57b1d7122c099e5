"""The default components: the bundled pocket models with the offline engines."""

from __future__ import annotations

from imagineer.generators import DiffusersGenerator
from imagineer.pocket.paths import WORLD_FILE, pocket_generator_dir, pocket_scorer_dir
from imagineer.prompting.expansion import Expander
from imagineer.prompting.offline import OfflineExpander
from imagineer.prompting.refiners import Refiner, SearchRefiner
from imagineer.prompting.vocabulary import vocabulary_from_world
from imagineer.scoring import ClipScorer


def pocket_components(
    model: str | None = None, scorer: str | None = None
) -> tuple[Expander, DiffusersGenerator, ClipScorer, Refiner]:
    """Expander, generator, scorer and refiner for offline runs in the pocket world's vocabulary.

    Args:
        model: A diffusers model instead of the pocket generator.
        scorer: An open_clip model spec instead of the pocket scorer.
    """
    vocabulary = vocabulary_from_world(WORLD_FILE)
    return (
        OfflineExpander(vocabulary),
        DiffusersGenerator(model or str(pocket_generator_dir())),
        ClipScorer(scorer or str(pocket_scorer_dir())),
        SearchRefiner(vocabulary),
    )
