"""RenderJob and the `imagineer render` command on tiny real models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from imagineer.agent.render_job import RenderJob
from imagineer.cli import app
from imagineer.generators import DiffusersConfig, DiffusersGenerator
from imagineer.scoring import ClipScorer


@pytest.fixture(scope="module")
def job(tiny_pipeline_dir: Path, tiny_clip_dir: Path) -> RenderJob:
    generator = DiffusersGenerator(DiffusersConfig(model=str(tiny_pipeline_dir), steps=3))
    return RenderJob(generator, ClipScorer(str(tiny_clip_dir)))


def test_candidates_are_ranked_best_first_with_progress(job: RenderJob) -> None:
    steps_seen: list[tuple[int, int]] = []
    result = job.run(
        "a fox in the snow",
        n=3,
        seed=2,
        concepts=["fox"],
        progress=lambda d, t: steps_seen.append((d, t)),
    )
    scores = [entry.score.clip_score for entry in result.ranked]
    cosines = [entry.score.cosine for entry in result.ranked]
    assert len(result.ranked) == 3
    assert scores == sorted(scores, reverse=True)
    assert cosines == sorted(cosines, reverse=True)
    assert steps_seen == [(i, 3) for i in range(1, 4)]


def test_saved_run_has_images_with_provenance_and_a_record(job: RenderJob, tmp_path: Path) -> None:
    result = job.run("a red star", "blurry", n=2, seed=1)
    folder = job.save(result, tmp_path)
    record = json.loads((folder / "render.json").read_text())
    files = [entry["file"] for entry in record["ranked"]]
    assert sorted(p.name for p in folder.iterdir()) == sorted([*files, "render.json"])
    first = Image.open(folder / files[0])
    params = json.loads(first.text["imagineer"])["params"]
    assert params["seed"] == record["ranked"][0]["candidate"]["params"]["seed"]
    assert first.text["parameters"].startswith("a red star\nNegative prompt: blurry\nSteps: 3")
    assert record["generator"]["model"] == job.generator.config.model
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "no temporary files left"


def test_cli_render_writes_a_run(
    tiny_pipeline_dir: Path, tiny_clip_dir: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    args = [
        "render", "a blue square", "-n", "2", "--steps", "2", "--concept", "blue",
        "--model", str(tiny_pipeline_dir), "--scorer", str(tiny_clip_dir), "--out", str(tmp_path),
    ]  # fmt: skip
    outcome = runner.invoke(app, args)
    assert outcome.exit_code == 0, outcome.output
    (folder,) = tmp_path.iterdir()
    record = json.loads((folder / "render.json").read_text())
    assert len(record["ranked"]) == 2 and record["concepts"] == ["blue"]


def test_cli_reports_typed_errors_without_a_traceback(tiny_clip_dir: Path, tmp_path: Path) -> None:
    outcome = CliRunner().invoke(
        app,
        ["render", "a fox", "--model", str(tmp_path / "missing"), "--scorer", str(tiny_clip_dir)],
    )
    assert outcome.exit_code == 2
    assert "ModelNotAvailable" in outcome.output and "missing" in outcome.output
    assert "Traceback" not in outcome.output


def test_cli_imagine_runs_the_loop_and_saves_it(
    tiny_pipeline_dir: Path, tiny_clip_dir: Path, tmp_path: Path
) -> None:
    args = [
        "imagine", "a red star at night", "--images", "4", "--rounds", "2", "--keep", "2",
        "--model", str(tiny_pipeline_dir), "--scorer", str(tiny_clip_dir), "--out", str(tmp_path),
    ]  # fmt: skip
    outcome = CliRunner().invoke(app, args)
    assert outcome.exit_code == 0, outcome.output
    (folder,) = tmp_path.iterdir()
    record = json.loads((folder / "run.json").read_text())
    assert len(record["candidates"]) == 4 and len(record["rounds"]) == 2
    assert sorted(p.name for p in folder.glob("0*.png")) == sorted(record["files"].values())
    assert len(record["files"]) == 2


@pytest.mark.parametrize("flag", ["--regions", "--no-regions"])
def test_cli_imagine_renders_regions_unless_told_not_to(
    tiny_pipeline_dir: Path, tiny_clip_dir: Path, tmp_path: Path, flag: str
) -> None:
    args = [
        "imagine", "a red heart beside a yellow square", "--images", "2", "--rounds", "1",
        "--model", str(tiny_pipeline_dir), "--scorer", str(tiny_clip_dir), "--out", str(tmp_path),
        flag,
    ]  # fmt: skip
    outcome = CliRunner().invoke(app, args)
    assert outcome.exit_code == 0, outcome.output
    (folder,) = tmp_path.iterdir()
    record = json.loads((folder / "run.json").read_text())
    assert record["config"]["regions"] is (flag == "--regions")
    expanded = [c for c in record["candidates"] if c["note"] == "expanded"]
    assert expanded
    rendered = [r["prompt"] for r in expanded[0]["candidate"]["params"]["regions"]]
    if flag == "--no-regions":
        assert rendered == []
    else:  # each region's prompt is its thing and place, then the spec's style and lighting
        assert rendered[0].startswith("a red heart on the left")
        assert rendered[1].startswith("a yellow square on the right")


def test_cli_imagine_rejects_a_budget_smaller_than_the_rounds(tiny_clip_dir: Path) -> None:
    outcome = CliRunner().invoke(app, ["imagine", "a fox", "--images", "2", "--rounds", "3"])
    assert outcome.exit_code == 2 and "images (2) must be >= rounds (3)" in outcome.output
