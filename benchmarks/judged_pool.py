"""What a judged-stage run's pool holds, and how two scorers rank its held-out captions.

For the pool of a run of the ``judged`` stage (``imagineer/pocket/judged.py``), per number of
things in the captioned scene: how many captions, the share of renders the judge reads as right,
how many captions have both right and wrong renders (the ones that teach) and how many have none
right. Then, on the held-out captions the tuning never saw (an evenly spaced tenth), the AUC of
each scorer given: how often a right render of a caption outscores a wrong one, by cosine.

    .venv/bin/python benchmarks/judged_pool.py runs/jm2 \
        --scorer imagineer/pocket/models/scorer --scorer runs/jm2/models/scorer

The held-out split is the one the current code draws; a run tuned with another split (the last
tenth, before session 10's fix) saw some of these captions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from imagineer.pocket.datasets import cached_renders
from imagineer.pocket.judged import held_out_auc, load_judged_pool, pool_scenes
from imagineer.pocket.world import load_world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a run directory with a judged_pool")
    parser.add_argument("--scorer", action="append", default=[], help="an exported scorer")
    args = parser.parse_args()
    import open_clip

    from imagineer.pocket.export import load_exported_scorer
    from imagineer.pocket.train import TrainConfig

    config = TrainConfig.model_validate_json((args.run_dir / "config.json").read_text())
    stage = config.judged
    pool = load_judged_pool(args.run_dir / "judged_pool", -(-stage.scenes // stage.chunk))
    scenes = cached_renders(args.run_dir / "data", config.n_scenes, config.seed, load_world())[1]
    things = np.array([len(s.objects) for s in pool_scenes(stage, scenes)])
    mixed = pool.right.any(axis=1) & ~pool.right.all(axis=1)
    held = pool.usable(stage.held_out, held_out=True)
    print("things  captions  right  teach  none-right  held-out")
    for k in sorted(set(things.tolist())):
        of = things == k
        print(
            f"{k:6d}  {of.sum():8d}  {pool.right[of].mean():5.2f}  {mixed[of].sum():5d}  "
            f"{(~pool.right[of].any(axis=1)).sum():10d}  {(things[held] == k).sum():8d}"
        )
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    for path in args.scorer:
        model = load_exported_scorer(Path(path), config.scorer_parts(args.run_dir)[0]).eval()
        aucs = [
            f"{k} things {held_out_auc(model, tokenizer, pool, held[things[held] == k]):.3f}"
            for k in sorted(set(things[held].tolist()))
        ]
        print(
            f"{path}: held-out AUC, all {held_out_auc(model, tokenizer, pool, held):.3f}; "
            + ", ".join(aucs)
        )


if __name__ == "__main__":
    main()
