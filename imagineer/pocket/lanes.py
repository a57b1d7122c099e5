"""Training in lanes: the scorer's stages beside the generator's, on a CPU with two cores.

The pocket models are too small to keep two threads busy. Alone on this machine a training step
is only 1.41x (UNet) to 1.55x (VAE) faster on two threads than on one, while two one-thread
processes side by side do 1.32-1.42x the work of one on both threads (measured by
``benchmarks/pocket_training_costs.py --lanes``, figures in ``benchmarks/results/``). The
stages' dependencies leave room for two processes::

    scorer lane:     clip, scorer
    generator lane:  vae, decoder  ->  text, unet    (text waits for the CLIP's text tower,
                                                      saved early, at ``text_encoder_step``)
    then:            the judged stage's pool in parts, side by side
    then:            adapt, judged, export

Each phase is a child process (``python -m imagineer.pocket.train --lanes 1``) on the same run
directory, so everything a sequential run guarantees still holds: a stage is skipped once done,
checkpoints are atomic, and every step draws its batch from ``(seed, step)``. A lane gets its
share of the threads while others work and all of them once it is alone: the runner stops it with
SIGTERM (it saves a checkpoint at its next step, see ``Deadline.stop_on_signals``) and starts it
again with more threads. Only float rounding, which depends on the thread count, differs from a
sequential run.

Every phase a child ran is appended to ``lanes.jsonl`` in the run directory (lane, stages,
threads, start, seconds, exit code): the run's measured timeline.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from imagineer.errors import ImagineerError
from imagineer.pocket.checkpoints import Deadline

logger = logging.getLogger(__name__)

TIMELINE = "lanes.jsonl"


class LaneFailed(ImagineerError):
    """A training lane's process exited with an error; the other lanes were stopped at a
    checkpoint, so re-running the same command resumes the whole run."""


@dataclass
class Phase:
    """Stages one child process runs, in the pipeline's order.

    Args:
        lane: The lane's name (in logs and the timeline).
        stages: The pipeline stages the child runs.
        needs: A file that must exist before the phase starts, while other lanes still work.
        part: ``(k, n)``: build only part ``k`` of ``n`` of the judged stage's pool.
    """

    lane: str
    stages: list[str]
    needs: Path | None = None
    part: tuple[int, int] | None = None


Lanes = dict[str, list[Phase]]
"""Lanes that run side by side: each a queue of phases run one after another."""


def plan(stages: list[str], run_dir: Path, *, judged: bool, parts: int) -> list[Lanes]:
    """The groups of lanes a run goes through, in order.

    Args:
        stages: The requested pipeline stages.
        run_dir: The run directory (where the CLIP's text tower appears).
        judged: Whether the judged stage has steps (so its pool is worth building in parts).
        parts: Into how many parts, side by side, the judged pool is built (1: not split).
    """

    def pick(*names: str) -> list[str]:
        return [name for name in names if name in stages]

    scorer, first, second = pick("clip", "scorer"), pick("vae", "decoder"), pick("text", "unet")
    tower = run_dir / "text_encoder" / "config.json" if "clip" in scorer else None
    generator = [Phase("generator", first), Phase("generator", second, needs=tower)]
    groups: list[Lanes] = [
        {"scorer": [Phase("scorer", scorer)] if scorer else [], "generator": generator}
    ]
    if judged and "judged" in stages and parts > 1:
        groups.append(
            {f"pool{k}": [Phase(f"pool{k}", ["judged"], part=(k, parts))] for k in range(parts)}
        )
    tail = pick("adapt", "judged", "export")
    if tail:
        groups.append({"tail": [Phase("tail", tail)]})
    return [{name: [p for p in phases if p.stages] for name, phases in g.items()} for g in groups]


def child_command(phase: Phase, threads: int, run_dir: Path, out: Path) -> list[str]:
    """The command line of the child process that runs ``phase`` on ``threads`` threads."""
    command = [sys.executable, "-m", "imagineer.pocket.train", "--lanes", "1"]
    command += ["--run-dir", str(run_dir), "--out", str(out), "--stages", ",".join(phase.stages)]
    command += ["--threads", str(threads), "--lane", phase.lane]
    if phase.part is not None:
        command += ["--pool-part", f"{phase.part[0]}/{phase.part[1]}"]
    return command


@dataclass
class _Job:
    phase: Phase
    process: subprocess.Popen[bytes]
    threads: int
    started: float = field(default_factory=time.monotonic)
    stopping: bool = False  # asked to stop: to resume on more threads, or at the deadline


class LaneRunner:
    """Runs groups of lanes as child processes, sharing the threads among the busy lanes.

    Args:
        command: The command line of a phase's child process on a number of threads.
        run_dir: Where the timeline (``lanes.jsonl``) is written.
        deadline: When passed (time, or a signal), running children are stopped at a
            checkpoint and nothing new starts.
        threads: All the threads the lanes share.
        poll: Seconds between looks at the children.

    Example:
        >>> runner = LaneRunner(lambda phase, threads: ["true"], Path("run"), Deadline(None), 2)
    """

    def __init__(
        self,
        command: Callable[[Phase, int], list[str]],
        run_dir: Path,
        deadline: Deadline,
        threads: int,
        poll: float = 1.0,
    ) -> None:
        self.command, self.run_dir, self.deadline = command, run_dir, deadline
        self.threads, self.poll = threads, poll

    def run(self, groups: list[Lanes]) -> bool:
        """Run the groups in order; True when every phase ran to its end.

        Raises:
            LaneFailed: A child exited with an error (the others are stopped first).
        """
        started = time.monotonic()
        for lanes in groups:
            if not self.run_group(lanes):
                return False
        logger.info("lanes: every phase done in %.1f min", (time.monotonic() - started) / 60)
        return True

    def run_group(self, lanes: Lanes) -> bool:
        """Run one group's lanes side by side; True when every phase ran to its end."""
        queues = {name: list(phases) for name, phases in lanes.items() if phases}
        jobs: dict[str, _Job] = {}
        try:
            while queues:
                self._start_ready(queues, jobs)
                self._collect(queues, jobs)
                if queues:
                    time.sleep(self.poll)
        finally:
            self._stop(jobs, wait=True)
        return not self.deadline.passed()

    def _share(self, busy: int) -> int:
        return max(1, self.threads // max(1, busy))

    def _start_ready(self, queues: dict[str, list[Phase]], jobs: dict[str, _Job]) -> None:
        for name in list(queues):
            if name in jobs:
                continue
            if self.deadline.passed():
                del queues[name]
                continue
            phase = queues[name][0]
            others = len(queues) > 1
            if phase.needs is not None and not phase.needs.is_file() and others:
                continue  # e.g. the text stage, until the CLIP has saved its text tower
            threads = self._share(len(queues))
            process = subprocess.Popen(self.command(phase, threads))
            jobs[name] = _Job(phase, process, threads)
            logger.info("lane %s: %s on %d thread(s)", name, ",".join(phase.stages), threads)

    def _collect(self, queues: dict[str, list[Phase]], jobs: dict[str, _Job]) -> None:
        for name, job in list(jobs.items()):
            code = job.process.poll()
            if code is None:
                more = self._share(len(queues)) > job.threads
                if (more or self.deadline.passed()) and not job.stopping:
                    job.stopping = True  # it saves a checkpoint at its next step
                    job.process.send_signal(signal.SIGTERM)
                continue
            del jobs[name]
            self._record(name, job, code)
            # A child asked to stop before its handler was installed (starting) or after it
            # was reset (exiting) dies of the signal: a stop like any other, it resumes from its
            # last checkpoint.
            if code != 0 and not (job.stopping and code == -signal.SIGTERM):
                self._stop(jobs, wait=True)
                stages = ",".join(job.phase.stages)
                raise LaneFailed(
                    f"lane {name} ({stages}) exited with code {code}; its log is above. The "
                    "other lanes stopped at a checkpoint: re-run the same command to resume."
                )
            if not job.stopping:  # it ran to its end
                queues[name].pop(0)
                if not queues[name]:
                    del queues[name]

    def _stop(self, jobs: dict[str, _Job], *, wait: bool) -> None:
        for job in jobs.values():
            if job.process.poll() is None and not job.stopping:
                job.stopping = True
                job.process.send_signal(signal.SIGTERM)
        if wait:
            for name, job in list(jobs.items()):
                self._record(name, job, job.process.wait())
            jobs.clear()

    def _record(self, name: str, job: _Job, code: int) -> None:
        seconds = time.monotonic() - job.started
        began = datetime.now(UTC).timestamp() - seconds
        entry = {
            "lane": name,
            "stages": job.phase.stages,
            "part": job.phase.part,
            "threads": job.threads,
            "start": datetime.fromtimestamp(began, UTC).isoformat(timespec="seconds"),
            "seconds": round(seconds, 1),
            "exit": code,
            "stopped": job.stopping,
        }
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / TIMELINE, "a") as timeline:
            timeline.write(json.dumps(entry) + "\n")
        how = "stopped" if job.stopping else "done"
        logger.info(
            "lane %s: %s %s after %.1f min", name, ",".join(job.phase.stages), how, seconds / 60
        )
