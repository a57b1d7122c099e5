"""Saving an agent run: its images best first and ``run.json``, every file written atomically."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from imagineer.agent.records import Run
from imagineer.agent.render_job import a1111_parameters
from imagineer.records import atomic_save_png, atomic_write_json, new_run_folder

logger = logging.getLogger(__name__)


def save_run(run: Run, root: Path, keep: int | None = None) -> Path:
    """Save ``run`` into a new folder under ``root``.

    Args:
        run: A finished run.
        root: Where run folders go.
        keep: Save only the best ``keep`` images (all if None); the record keeps every candidate.

    Returns:
        The run's folder: ``best.png``, ``NN-rR-cC.png`` best first, and ``run.json``.
    """
    folder = new_run_folder(root, run.idea)
    ranked = sorted(run.candidates, key=lambda c: -c.objective)[:keep]
    files: dict[str, str] = {}
    for rank, entry in enumerate(ranked, start=1):
        name = f"{rank:02d}-{entry.id}.png"
        record = json.dumps(entry.model_dump(mode="json", exclude={"candidate": {"image"}}))
        chunks = {"parameters": a1111_parameters(entry.candidate), "imagineer": record}
        atomic_save_png(folder / name, entry.candidate.image, chunks)
        files[entry.id] = name
    best = run.best
    atomic_save_png(
        folder / "best.png", best.candidate.image, {"parameters": a1111_parameters(best.candidate)}
    )
    atomic_write_json(folder / "run.json", {**run.record(), "files": files})
    logger.info("saved run %r to %s", run.idea, folder)
    return folder
