"""Training lanes: the scheduler with stand-in children (real processes, scripted work), and one
tiny real training run through the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from imagineer.pocket.checkpoints import Deadline
from imagineer.pocket.lanes import TIMELINE, LaneFailed, LaneRunner, Phase, plan

# A stand-in for a lane's child: it "works" for a scripted time (faster on more threads), keeps
# its progress in a file across restarts, makes files at given points, and on SIGTERM saves its
# progress and exits 0, as a training child saves a checkpoint.
CHILD = r"""
import json, pathlib, signal, sys, time
spec = json.loads(pathlib.Path(sys.argv[1]).read_text())
lane, stages, threads = sys.argv[2], sys.argv[3], int(sys.argv[4])
log, progress_file = pathlib.Path(spec["log"]), pathlib.Path(spec["log"] + "." + stages)
def note(event):
    with log.open("a") as f:
        f.write(json.dumps([lane, stages, threads, event, time.time()]) + "\n")
stopped = []
signal.signal(signal.SIGTERM, lambda *_: stopped.append(1))
note("start")
done = float(progress_file.read_text()) if progress_file.is_file() else 0.0
work, makes = spec["work"].get(stages, 0.1), spec["makes"].get(stages, [])
while done < work:
    if stopped:
        progress_file.write_text(str(done))
        note("stopped")
        sys.exit(0)
    time.sleep(0.02)
    done += 0.02 * threads
    for at, path in makes:
        if done >= at and not pathlib.Path(path).exists():
            pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
            pathlib.Path(path).write_text("{}")
            note("made")
note("end")
sys.exit(spec["exit"].get(stages, 0))
"""

STAGES = ["clip", "text", "vae", "decoder", "unet", "judged", "export"]


def _runner(tmp_path: Path, spec: dict, deadline: Deadline | None = None) -> LaneRunner:  # type: ignore[type-arg]
    script, spec_file = tmp_path / "child.py", tmp_path / "spec.json"
    script.write_text(CHILD)
    spec_file.write_text(json.dumps({"log": str(tmp_path / "log"), "exit": {}, **spec}))

    def command(phase: Phase, threads: int) -> list[str]:
        stages = ",".join(phase.stages) + (f"@{phase.part[0]}" if phase.part else "")
        return [sys.executable, str(script), str(spec_file), phase.lane, stages, str(threads)]

    return LaneRunner(command, tmp_path / "run", deadline or Deadline(None), 2, poll=0.02)


def _events(tmp_path: Path) -> list[list]:  # type: ignore[type-arg]
    return [json.loads(line) for line in (tmp_path / "log").read_text().splitlines()]


def test_the_plan_puts_the_scorer_beside_the_generator_then_the_pool_in_parts(
    tmp_path: Path,
) -> None:
    groups = plan(STAGES, tmp_path, judged=True, parts=2)
    shape = [{lane: [p.stages for p in phases] for lane, phases in g.items()} for g in groups]
    assert shape == [
        {"scorer": [["clip"]], "generator": [["vae", "decoder"], ["text", "unet"]]},
        {"pool0": [["judged"]], "pool1": [["judged"]]},
        {"tail": [["judged", "export"]]},
    ]
    assert groups[0]["generator"][1].needs == tmp_path / "text_encoder" / "config.json"
    assert [groups[1][f"pool{k}"][0].part for k in (0, 1)] == [(0, 2), (1, 2)]
    # without the clip stage nothing is awaited; without judged steps the pool is not split
    groups = plan(["text", "unet", "judged"], tmp_path, judged=False, parts=2)
    assert groups[0]["generator"][0].needs is None and len(groups) == 2


def test_lanes_wait_for_the_text_tower_and_a_lane_left_alone_resumes_on_all_threads(
    tmp_path: Path,
) -> None:
    tower = tmp_path / "run" / "text_encoder" / "config.json"
    spec = {
        "work": {"clip": 0.6, "vae,decoder": 1.6, "text,unet": 0.4, "judged@0": 0.5},
        "makes": {"clip": [[0.3, str(tower)]]},
    }
    runner = _runner(tmp_path, spec)
    assert runner.run(plan(STAGES, tmp_path / "run", judged=True, parts=2))

    events = _events(tmp_path)
    starts = [tuple(e[:3]) for e in events if e[3] == "start"]
    # children started together log their start in either order
    assert sorted(starts[:2]) == [("generator", "vae,decoder", 1), ("scorer", "clip", 1)]
    assert starts[2:4] == [  # alone once the scorer lane is done: resumed on two threads
        ("generator", "vae,decoder", 2),
        ("generator", "text,unet", 2),
    ]
    assert sorted(starts[4:6]) == [("pool0", "judged@0", 1), ("pool1", "judged@1", 1)]
    assert starts[6:] == [("pool0", "judged@0", 2), ("tail", "judged,export", 2)]
    made = next(t for *_, event, t in events if event == "made")
    text_start = next(t for lane, stages, _, event, t in events if stages == "text,unet")
    assert text_start >= made
    # the work done on one thread was kept across the restart (progress saved at the stop)
    ends = [e for e in events if e[3] == "end"]
    assert [e[1] for e in ends].count("vae,decoder") == 1
    timeline = [json.loads(line) for line in (tmp_path / "run" / TIMELINE).read_text().splitlines()]
    assert len(timeline) == len(starts)
    stopped = [(t["lane"], t["threads"]) for t in timeline if t["stopped"]]
    assert stopped == [("generator", 1), ("pool0", 1)]
    assert all(t["exit"] == 0 and t["seconds"] >= 0 for t in timeline)


def test_a_failed_lane_stops_the_others_at_a_checkpoint_and_raises(tmp_path: Path) -> None:
    spec = {"work": {"clip": 0.2, "vae,decoder": 5.0}, "makes": {}, "exit": {"clip": 3}}
    runner = _runner(tmp_path, spec)
    with pytest.raises(LaneFailed, match=r"lane scorer \(clip\) exited with code 3"):
        runner.run(plan(STAGES, tmp_path / "run", judged=False, parts=2))
    assert ["generator", "vae,decoder", 1, "stopped"] in [e[:4] for e in _events(tmp_path)]


def test_the_deadline_stops_every_lane_and_starts_nothing_new(tmp_path: Path) -> None:
    spec = {"work": {"clip": 5.0, "vae,decoder": 5.0}, "makes": {}}
    runner = _runner(tmp_path, spec, Deadline(0.01))
    assert not runner.run(plan(STAGES, tmp_path / "run", judged=True, parts=2))
    events = _events(tmp_path)
    assert sorted(e[1] for e in events if e[3] == "stopped") == ["clip", "vae,decoder"]
    assert not any(e[3] == "end" for e in events)


def test_a_tiny_run_in_lanes_trains_and_exports_both_models(tmp_path: Path) -> None:
    import shutil

    import torch
    from tiny_specs import TINY_CLIP, TINY_UNET, TINY_VAE

    from imagineer.generators.diffusers_generator import DiffusersGenerator
    from imagineer.pocket.judged import JudgedStage
    from imagineer.pocket.paths import pocket_generator_dir
    from imagineer.pocket.train import TrainConfig
    from imagineer.pocket.train_clip import ClipStage
    from imagineer.pocket.train_text import TextStage
    from imagineer.pocket.train_unet import UnetStage
    from imagineer.pocket.train_vae import DecoderStage, VaeStage
    from imagineer.scoring.clip_scorer import ClipScorer

    small = {"batch": 4, "save_every": 1}
    config = TrainConfig(
        n_scenes=100,
        n_held_out=10,
        clip_spec=TINY_CLIP,
        vae_spec=TINY_VAE,
        unet_spec=TINY_UNET,
        clip=ClipStage(steps=4, negatives=1, text_encoder_step=2, eval_every=100, **small),
        text=TextStage(steps=2, batch=4),
        vae=VaeStage(steps=3, eval_every=100, **small),
        decoder=DecoderStage(steps=2, eval_every=100, **small),
        unet=UnetStage(steps=3, **small),
        judged=JudgedStage(steps=2, scenes=6, renders=4, chunk=2, batch=6, save_every=1),
        defaults={"steps": 2, "guidance": 3.0, "scheduler": "euler"},
    )
    recipe, run_dir, out = tmp_path / "recipe.json", tmp_path / "run", tmp_path / "out"
    recipe.write_text(config.model_dump_json())
    command = [sys.executable, "-m", "imagineer.pocket.train", "--config", str(recipe)]
    command += ["--run-dir", str(run_dir), "--out", str(out), "--lanes", "2", "--stages"]
    subprocess.run([*command, "clip,text,vae,decoder,unet"], check=True, timeout=600)
    timeline = [json.loads(line) for line in (run_dir / TIMELINE).read_text().splitlines()]
    assert {t["lane"] for t in timeline} == {"scorer", "generator"}
    image = DiffusersGenerator(str(out / "generator")).render("a red star", n=1, seed=0)[0].image
    assert -1 <= ClipScorer(str(out / "scorer")).score([image], "a red star")[0].cosine <= 1

    # The judged stage needs a generator that gets some renders right: a copy of the bundled
    # one (a copy: the export stage writes the run's own generator over it).
    shutil.rmtree(out / "generator")
    shutil.copytree(pocket_generator_dir(), out / "generator")
    untuned = (out / "scorer" / "open_clip_model.safetensors").read_bytes()
    subprocess.run([*command, "judged,export"], check=True, timeout=600)
    timeline = [json.loads(line) for line in (run_dir / TIMELINE).read_text().splitlines()]
    parts = [t for t in timeline if t["lane"].startswith("pool")]
    assert {tuple(t["part"]) for t in parts} == {(0, 2), (1, 2)}
    assert [p.name for p in sorted((run_dir / "judged_pool").glob("*.npz"))] == [
        f"judged-{n:05d}.npz" for n in range(3)
    ]
    assert torch.load(run_dir / "judged.pt", weights_only=False)["step"] == 2
    assert (out / "scorer" / "open_clip_model.safetensors").read_bytes() != untuned
