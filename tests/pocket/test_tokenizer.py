"""The offline CLIP tokenizer against open_clip's own, on real benchmark prompts."""

from __future__ import annotations

import csv
from pathlib import Path

from open_clip.tokenizer import SimpleTokenizer
from transformers import CLIPTokenizer

from imagineer.pocket.tokenizer import VOCAB_SIZE, build_clip_tokenizer

PARTI = Path(__file__).parents[1] / "data" / "PartiPrompts.tsv"
# open_clip runs ftfy first, which straightens typographic quotes; HF's CLIPTokenizer (and so every
# SD pipeline) does not. This is the whole of the difference on PartiPrompts.
FTFY_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def test_token_for_token_identical_to_open_clip_on_parti_prompts(tmp_path: Path) -> None:
    build_clip_tokenizer(tmp_path)
    tokenizer = CLIPTokenizer.from_pretrained(str(tmp_path))
    reference = SimpleTokenizer()
    with PARTI.open(newline="") as handle:
        prompts = [
            row["Prompt"].translate(FTFY_QUOTES) for row in csv.DictReader(handle, delimiter="\t")
        ]
    assert len(prompts) == 1632
    mismatched = [
        p
        for p in prompts
        if tokenizer(p, add_special_tokens=False).input_ids != reference.encode(p)
    ]
    assert mismatched == []
    assert len(tokenizer) == VOCAB_SIZE
    ids = tokenizer("a fox in the snow").input_ids
    assert ids[0] == 49406 and ids[-1] == 49407 and tokenizer.model_max_length == 77
