"""How much a text encoder's token states move when one word of a caption changes, per attribute.

A UNet can only follow the words its text encoder tells apart. For each attribute, every
alternative word of the world's vocabulary is swapped into a base caption, and the mean over
the 77 token states of the norm of the change of ``last_hidden_state`` is reported (the states
themselves have norm ~8). Near zero means the generator cannot hear that attribute.

    .venv/bin/python benchmarks/pocket_text_separation.py \\
        runs/pocket/text_encoder runs/pocket/generator_text
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import torch
from transformers import CLIPTextModel

from imagineer.pocket.tokenizer import build_clip_tokenizer
from imagineer.pocket.world import World, load_world

BASE = "a large red square on the left, daylight, flat illustration"
SLOTS = {  # the word of BASE each attribute swaps, and the world's list of its values
    "shape": ("square", "shapes"),
    "colour": ("red", "colours"),
    "size": ("large", "sizes"),
    "position": ("on the left", "positions"),
    "lighting": ("daylight", "lightings"),
    "style": ("flat illustration", "styles"),
}


def alternatives(field: str, world: World) -> list[str]:
    """The first phrase (or synonym) of every value in one of the world's vocabularies."""
    words = []
    for entry in getattr(world, field):
        phrases = getattr(entry, "phrases", None) or getattr(entry, "synonyms", None)
        words.append(phrases[0] if phrases else entry.name)
    return words


@torch.inference_mode()
def separation(path: str, tokenizer: Any, world: World) -> dict[str, float]:
    """Per attribute, the mean per-token state change over all one-word swaps of ``BASE``."""
    model = CLIPTextModel.from_pretrained(path, torch_dtype=torch.float32).eval()

    def states(text: str) -> torch.Tensor:
        tokens = tokenizer(
            [text], padding="max_length", max_length=77, truncation=True, return_tensors="pt"
        )
        return model(input_ids=tokens.input_ids).last_hidden_state[0]

    base = states(BASE)
    report = {}
    for kind, (word, field) in SLOTS.items():
        changes = [
            float((states(BASE.replace(word, other)) - base).norm(dim=-1).mean())
            for other in alternatives(field, world)
            if other != word
        ]
        report[kind] = round(statistics.mean(changes), 2) if changes else float("nan")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("encoders", nargs="+", help="CLIPTextModel directories")
    args = parser.parse_args()
    import tempfile

    world = load_world()
    with tempfile.TemporaryDirectory() as directory:
        tokenizer = build_clip_tokenizer(directory)
    for path in args.encoders:
        print(path, separation(path, tokenizer, world))


if __name__ == "__main__":
    main()
