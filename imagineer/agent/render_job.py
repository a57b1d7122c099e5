"""One round without refinement: render N candidates, score them, rank them, save them.

This is the best-of-N baseline every later loop is measured against, and the job behind
``imagineer render``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imagineer import __version__
from imagineer.generators import Candidate, DiffusersConfig, DiffusersGenerator
from imagineer.generators.base import StepCallback
from imagineer.records import atomic_save_png, atomic_write_json, new_run_folder
from imagineer.scoring import ClipScorer, ClipScorerConfig, ImageScore

logger = logging.getLogger(__name__)


class RankedCandidate(BaseModel):
    """A candidate with its score and the file it was saved to."""

    model_config = ConfigDict(frozen=True)

    candidate: Candidate
    score: ImageScore
    file: str = ""


class RenderResult(BaseModel):
    """The outcome of a `RenderJob`: candidates best first, and every setting that made them."""

    prompt: str
    negative_prompt: str
    concepts: list[str]
    ranked: list[RankedCandidate]
    seconds: float = Field(ge=0.0)
    generator: DiffusersConfig
    scorer: ClipScorerConfig

    def record(self) -> dict[str, Any]:
        """JSON-ready record of the whole job (no pixels; images are saved beside it)."""
        return {"imagineer": __version__, **self.model_dump(mode="json")}


class RenderJob:
    """Render, score and rank N candidates of one prompt.

    Example:
        >>> job = RenderJob.create()  # the bundled pocket models
        >>> result = job.run("a red star at night", n=4)
        >>> result.ranked[0].score.clip_score
    """

    def __init__(self, generator: DiffusersGenerator, scorer: ClipScorer) -> None:
        self.generator = generator
        self.scorer = scorer

    @classmethod
    def create(cls, model: str | None = None, scorer: str | None = None) -> RenderJob:
        """A job on the given models, or on the bundled pocket models where None."""
        from imagineer.pocket.paths import pocket_generator_dir, pocket_scorer_dir

        model = model or str(pocket_generator_dir())
        scorer = scorer or str(pocket_scorer_dir())
        return cls(DiffusersGenerator(model), ClipScorer(scorer))

    def load(self) -> None:
        """Load both models now (they are shared by every later job in this process)."""
        _ = self.generator.pipeline
        _ = self.scorer.loaded

    def run(
        self,
        prompt: str,
        negative_prompt: str = "",
        *,
        n: int = 4,
        seed: int = 0,
        concepts: Sequence[str] = (),
        progress: StepCallback | None = None,
        **render_options: Any,
    ) -> RenderResult:
        """Render ``n`` candidates of ``prompt``, score them against it and rank them.

        Args:
            prompt: What to draw.
            negative_prompt: What to keep out.
            n: Candidates to render.
            seed: Base seed; per-candidate seeds derive from it.
            concepts: Phrases scored separately against every image.
            progress: Step callback passed to the generator.
            **render_options: steps, guidance, scheduler, width, height.

        Returns:
            The candidates, best CLIPScore first.
        """
        started = time.perf_counter()
        candidates = self.generator.render(
            prompt, negative_prompt, n=n, seed=seed, progress=progress, **render_options
        )
        scores = self.scorer.score([c.image for c in candidates], prompt, concepts)
        # CLIPScore is 2.5 * max(cos, 0): ranking by the raw cosine gives the same order and still
        # separates candidates whose cosines are all negative.
        order = sorted(range(len(candidates)), key=lambda i: -scores[i].cosine)
        return RenderResult(
            prompt=prompt,
            negative_prompt=negative_prompt,
            concepts=list(dict.fromkeys(concepts)),
            ranked=[RankedCandidate(candidate=candidates[i], score=scores[i]) for i in order],
            seconds=time.perf_counter() - started,
            generator=self.generator.config,
            scorer=self.scorer.config,
        )

    def save(self, result: RenderResult, root: Path) -> Path:
        """Save the ranked images and ``render.json`` into a new folder under ``root``.

        Every file is written atomically; each PNG carries its parameters as text chunks
        (``parameters`` in the A1111 layout, ``imagineer`` as the full JSON record).

        Returns:
            The run's folder.
        """
        folder = new_run_folder(root, result.prompt)
        ranked = []
        for rank, entry in enumerate(result.ranked, start=1):
            name = f"{rank:02d}-seed{entry.candidate.params.seed}.png"
            record = {**entry.candidate.record(), "score": entry.score.model_dump()}
            atomic_save_png(
                folder / name,
                entry.candidate.image,
                {"parameters": a1111_parameters(entry.candidate), "imagineer": json.dumps(record)},
            )
            ranked.append(entry.model_copy(update={"file": name}))
        result.ranked = ranked
        atomic_write_json(folder / "render.json", result.record())
        logger.info("saved %d images to %s", len(ranked), folder)
        return folder


def a1111_parameters(candidate: Candidate) -> str:
    """The candidate's settings in the text layout A1111 and ComfyUI readers understand."""
    p = candidate.params
    lines = [p.prompt]
    if p.negative_prompt:
        lines.append(f"Negative prompt: {p.negative_prompt}")
    lines.append(
        f"Steps: {p.steps}, Sampler: {p.scheduler}, CFG scale: {p.guidance}, Seed: {p.seed}, "
        f"Size: {p.width}x{p.height}, Model: {p.model}, Model hash: {p.model_revision}"
    )
    return "\n".join(lines)
