"""OfflineExpander: seeded expansion of an idea from a vocabulary and style presets, no network.

Like Fooocus's expansion, the same idea and seed always give the same specs, in any process: the
random stream is seeded from the string ``"offline:{seed}:{idea}"`` (``random.Random`` hashes
strings with SHA-512, not with Python's salted ``hash()``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

from imagineer.errors import ExpansionFailed, InvalidInput, UnknownStyle
from imagineer.prompting.expansion import (
    Expander,
    Expansion,
    Provenance,
    check_idea,
    split_constraints,
)
from imagineer.prompting.foils import foils_for
from imagineer.prompting.layout import layout_regions, layout_terms
from imagineer.prompting.spec import PromptSpec
from imagineer.prompting.styles import StyleLibrary
from imagineer.prompting.vocabulary import TermGroup, Vocabulary, load_vocabulary

logger = logging.getLogger(__name__)

_TRIES_PER_SPEC = 40


class OfflineExpander(Expander):
    """Expands ideas by seeded draws from a vocabulary's groups and a style library.

    For each spec it draws between ``min_picks`` and ``max_picks`` options from every group that
    maps to a spec field, skipping what the idea already says (an idea "at sunset" gets no other
    lighting) and, with a style library, a preset name (else a phrase from the ``style`` group).
    Every spec also carries the idea's layout hints as composition terms ("a cat on the left",
    "a dog on the right" for "a cat next to a dog"; "three apples" for "3 apples"), and with
    ``regions`` each of those things as a regional prompt over its part of the canvas.

    Example:
        >>> expander = OfflineExpander(load_vocabulary(), load_styles())
        >>> expansion = expander.expand("a fox in the snow", k=4, seed=0)
    """

    name = "offline"

    def __init__(
        self,
        vocabulary: Vocabulary | None = None,
        styles: StyleLibrary | None = None,
        *,
        p_style: float = 0.75,
        layout: bool = True,
        regions: bool = True,
    ) -> None:
        """Keep the term sources; nothing is drawn until `expand`.

        Args:
            vocabulary: Terms to draw from; None loads the bundled general vocabulary.
            styles: Presets to draw style names from; None draws phrases from the vocabulary's
                ``style`` group, which render as plain terms (the pocket world's way).
            p_style: Chance, in [0, 1], that a spec gets a style when the caller forces none.
            layout: Add layout hints (`imagineer.prompting.layout`): a place for each of the
                things an idea names together, and counts in words.
            regions: Give each placed or counted thing a region of its own
                (`layout_regions`), rendered by generators that support regional prompts.
        """
        if not 0.0 <= p_style <= 1.0:
            raise InvalidInput(f"p_style must be in [0, 1], got {p_style}")
        self.vocabulary = vocabulary if vocabulary is not None else load_vocabulary()
        self.styles = styles
        self.p_style = p_style
        self.layout = layout
        self.regions = regions

    def expand(
        self,
        idea: str,
        k: int,
        *,
        seed: int,
        style: str | None = None,
        constraints: Sequence[str] = (),
    ) -> Expansion:
        """Expand ``idea`` into ``k`` distinct specs; see `Expander.expand`.

        Raises:
            InvalidInput: A blank idea or ``k < 1``.
            UnknownStyle: ``style`` is not in the style library.
            ExpansionFailed: The vocabulary cannot make ``k`` distinct specs for this idea.
        """
        # 1. Check inputs
        idea = check_idea(idea, k)
        if style is not None and self.styles is not None and style not in self.styles:
            raise UnknownStyle(f"style {style!r} is not in the style library")
        positive, negative = split_constraints(constraints)
        said = " ".join([idea, *positive])
        layout = layout_terms(idea, self.vocabulary) if self.layout else []
        regions = layout_regions(idea, self.vocabulary) if self.regions else []
        # 2. Draw until k distinct specs, within a bounded number of tries
        rng = random.Random(f"offline:{seed}:{idea}")
        specs: dict[str, PromptSpec] = {}
        for _ in range(k * _TRIES_PER_SPEC):
            spec = self._draw(rng, idea, said, style, positive, negative, layout)
            spec = spec.model_copy(update={"regions": regions})
            specs.setdefault(spec.fingerprint(), spec)
            if len(specs) == k:
                break
        if len(specs) < k:
            raise ExpansionFailed(
                f"offline:{self.vocabulary.name}",
                f"the vocabulary allows only {len(specs)} distinct specs for {idea!r}",
                attempts=1,
            )
        provenance = Provenance(engine=self.name, model=self.vocabulary.name, seed=seed)
        return Expansion(idea=idea, specs=list(specs.values()), provenance=provenance)

    def foils(self, idea: str) -> list[str]:
        """The idea with one stated detail changed (`foils_for` over this vocabulary)."""
        return foils_for(check_idea(idea, 1), self.vocabulary)

    def _draw(
        self,
        rng: random.Random,
        idea: str,
        said: str,
        style: str | None,
        positive: list[str],
        negative: list[str],
        layout: list[str],
    ) -> PromptSpec:
        """One random spec: each spec field's group drawn in a fixed order; layout hints first."""
        fields = {
            name: draw_options(rng, self.vocabulary.group(name), said)
            for name in ("lighting", "composition", "details", "negative")
        }
        return PromptSpec(
            subject=idea,
            style=style if style is not None else self._draw_style(rng, said),
            lighting=fields["lighting"],
            composition=[*layout, *fields["composition"]],
            details=[*positive, *fields["details"]],
            negative=[*negative, *fields["negative"]],
        )

    def _draw_style(self, rng: random.Random, said: str) -> str | None:
        group = self.vocabulary.group("style")
        if group.find(said) or rng.random() >= self.p_style:
            return None
        if self.styles is not None and len(self.styles):
            return rng.choice(self.styles.names())
        return rng.choice(group.phrases()) if group.options else None


def draw_options(rng: random.Random, group: TermGroup, said: str) -> list[str]:
    """Draw phrases from ``group`` that ``said`` does not already mention.

    An exclusive group (one pick at most) the text already mentions yields nothing.
    """
    mentioned = group.find(said)
    if not group.options or (group.exclusive and mentioned):
        return []
    available = [o.phrase for o in group.options if o not in mentioned]
    count = min(rng.randint(group.min_picks, group.max_picks), len(available))
    return rng.sample(available, count)
