"""The ``imagineer`` command line: a thin layer over the Python API (typer + rich)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from imagineer.agent.records import BestChanged, CandidateScored, Event, RoundStarted, Run
from imagineer.errors import ImagineerError

app = typer.Typer(
    help="imagineer: turn short ideas into great images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
pocket_app = typer.Typer(help="The pocket world's offline models.", no_args_is_help=True)
app.add_typer(pocket_app, name="pocket")
console = Console(stderr=True)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    for noisy in ("diffusers", "transformers", "huggingface_hub", "root"):
        logging.getLogger(noisy).setLevel(logging.ERROR if not verbose else logging.INFO)
    # Our own progress bar reports loading and rendering; the libraries' tqdm bars would interleave.
    import diffusers.utils.logging
    import transformers.utils.logging

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()


def _fail(error: ImagineerError) -> typer.Exit:
    console.print(f"[bold red]error:[/] {type(error).__name__}: {error}")
    return typer.Exit(code=2)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


@app.command()
def render(
    prompt: Annotated[str, typer.Argument(help="What to draw.")],
    negative: Annotated[str, typer.Option(help="Negative prompt.")] = "",
    n: Annotated[int, typer.Option("-n", "--n", help="Candidates to render.")] = 4,
    seed: Annotated[int, typer.Option(help="Base seed; per-candidate seeds derive from it.")] = 0,
    steps: Annotated[int | None, typer.Option(help="Denoising steps (model default).")] = None,
    guidance: Annotated[float | None, typer.Option(help="CFG scale (model default).")] = None,
    scheduler: Annotated[str | None, typer.Option(help="euler, euler_a, dpmpp_2m, ...")] = None,
    width: Annotated[int | None, typer.Option(help="Pixels, multiple of 8.")] = None,
    height: Annotated[int | None, typer.Option(help="Pixels, multiple of 8.")] = None,
    model: Annotated[
        str | None, typer.Option(help="Diffusers model: hub id or directory (pocket default).")
    ] = None,
    scorer: Annotated[
        str | None, typer.Option(help="open_clip 'ARCH:TAG' or directory (pocket default).")
    ] = None,
    concept: Annotated[
        list[str] | None, typer.Option(help="A phrase to score separately; repeatable.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the run's folder.")] = Path("outputs"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Render N candidates of PROMPT, rank them by CLIP and save them with full provenance."""
    from imagineer.agent.render_job import RenderJob

    _setup_logging(verbose)
    try:
        job = RenderJob.create(model=model, scorer=scorer)
        with _progress() as bar:
            task = bar.add_task("loading models", total=None)
            job.load()
            bar.update(task, description="rendering", total=1, completed=0)

            def on_step(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = job.run(
                prompt,
                negative,
                n=n,
                seed=seed,
                concepts=concept or [],
                progress=on_step,
                steps=steps,
                guidance=guidance,
                scheduler=scheduler,
                width=width,
                height=height,
            )
        folder = job.save(result, out)
    except ImagineerError as error:
        raise _fail(error) from error
    _print_ranking(result, folder)


def _print_ranking(result, folder: Path) -> None:  # type: ignore[no-untyped-def]
    table = Table(title=f"{result.prompt!r} ({result.seconds:.1f} s)")
    for column in ("rank", "file", "seed", "CLIPScore", *result.concepts):
        table.add_column(column)
    for rank, entry in enumerate(result.ranked, start=1):
        concept_cells = [f"{entry.score.concepts[c]:+.3f}" for c in result.concepts]
        table.add_row(
            str(rank),
            entry.file,
            str(entry.candidate.params.seed),
            f"{entry.score.clip_score:.3f}",
            *concept_cells,
        )
    Console().print(table)
    Console().print(f"saved to {folder}")


@app.command()
def imagine(
    idea: Annotated[str, typer.Argument(help="A short idea, e.g. 'a red star at night'.")],
    images: Annotated[int, typer.Option(help="Image budget for the whole run.")] = 16,
    rounds: Annotated[int, typer.Option(help="At most this many rounds.")] = 4,
    specs: Annotated[int, typer.Option(help="Distinct prompts per round.")] = 2,
    seed: Annotated[int, typer.Option(help="Run seed; the same seed gives the same run.")] = 0,
    style: Annotated[str | None, typer.Option(help="A style every prompt must use.")] = None,
    constraint: Annotated[
        list[str] | None, typer.Option(help="A requirement ('no text'); repeatable.")
    ] = None,
    regions: Annotated[
        bool, typer.Option(help="Render each placed or counted thing from its own prompt.")
    ] = True,
    seconds: Annotated[float | None, typer.Option(help="Start no round after this long.")] = None,
    threshold: Annotated[float | None, typer.Option(help="Stop at this objective.")] = None,
    model: Annotated[str | None, typer.Option(help="Diffusers model (pocket default).")] = None,
    scorer: Annotated[str | None, typer.Option(help="open_clip model (pocket default).")] = None,
    llm: Annotated[
        str | None, typer.Option(help="Chat model for expansion and refinement (offline if unset).")
    ] = None,
    llm_base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1.")
    ] = None,
    keep: Annotated[int, typer.Option(help="Save the best K images (all are recorded).")] = 4,
    out: Annotated[Path, typer.Option(help="Folder for the run's folder.")] = Path("outputs"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the agent on IDEA: expand, render, score, refine; save the best images and run.json."""
    from imagineer.agent.loop import Agent, AgentConfig
    from imagineer.agent.store import save_run

    _setup_logging(verbose)
    try:
        config = AgentConfig(
            images=images, rounds=rounds, specs_per_round=specs, seed=seed, style=style,
            seconds=seconds, threshold=threshold, regions=regions,
        )  # fmt: skip
        with _progress() as bar:
            task = bar.add_task("loading models", total=images)
            agent = Agent.from_defaults(
                config, model=model, scorer=scorer, llm=llm, llm_base_url=llm_base_url
            )
            agent.on_event = _progress_updater(bar, task)
            run = agent.run(idea, constraints=constraint or [])
        folder = save_run(run, out, keep=keep)
    except ImagineerError as error:
        raise _fail(error) from error
    except ValueError as error:  # pydantic validation of the options
        console.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(code=2) from error
    _print_run(run, folder)


def _progress_updater(bar: Progress, task: TaskID) -> Callable[[Event], None]:
    """Turn agent events into progress-bar updates (images scored out of the budget)."""
    scored = [0]

    def update(event: Event) -> None:
        if isinstance(event, RoundStarted):
            bar.update(task, description=f"round {event.round + 1}: rendering {event.images}")
        elif isinstance(event, CandidateScored):
            scored[0] += 1
            bar.update(task, completed=scored[0], description="scoring")
        elif isinstance(event, BestChanged):
            bar.console.log(f"best so far: {event.candidate_id} ({event.objective:+.4f})")

    return update


def _print_run(run: Run, folder: Path) -> None:
    table = Table(title=f"{run.idea!r}: {len(run.candidates)} images, {run.seconds:.1f} s")
    for column in ("round", "best", "objective", "prompt"):
        table.add_column(column)
    for entry in run.rounds:
        best = run.candidate(entry.best_id)
        table.add_row(str(entry.index), best.id, f"{best.objective:+.4f}", best.prompt.positive)
    Console().print(table)
    Console().print(f"best: {run.best.id}, stopped: {run.stopped}; saved to {folder}")


@app.command()
def schedulers() -> None:
    """List the scheduler names --scheduler accepts."""
    from imagineer.generators import scheduler_names

    for name in scheduler_names():
        typer.echo(name)


@pocket_app.command("build-tiny")
def build_tiny(
    out: Annotated[Path, typer.Option(help="Where to write generator/ and scorer/.")] = Path(
        "build/tiny"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the random weights.")] = 0,
    size: Annotated[int, typer.Option(help="Native image size, multiple of 16.")] = 64,
) -> None:
    """Build untrained tiny models in the real formats (for tests and smoke runs)."""
    from imagineer.pocket.tiny import build_tiny_clip, build_tiny_pipeline

    _setup_logging(False)
    started = time.perf_counter()
    build_tiny_pipeline(out / "generator", seed=seed, image_size=size)
    build_tiny_clip(out / "scorer", seed=seed)
    summary = {"generator": str(out / "generator"), "scorer": str(out / "scorer")}
    typer.echo(json.dumps(summary))
    console.print(f"built in {time.perf_counter() - started:.1f} s")


def main() -> None:
    """Entry point for ``python -m imagineer``."""
    app()


if __name__ == "__main__":
    main()
