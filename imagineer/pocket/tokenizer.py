"""The real CLIP tokenizer, built offline from the BPE vocabulary that open_clip ships.

Every CLIP-based Stable Diffusion uses the same 49,408-token byte-level BPE. open_clip bundles its
merges as ``bpe_simple_vocab_16e6.txt.gz``; the vocabulary is derived from them the way CLIP does
(256 byte symbols, the same with an end-of-word mark, one token per merge, two markers), so the
transformers tokenizer built here gives the same ids as SD's own tokenizer, and as open_clip's
wherever ftfy has nothing to repair (open_clip straightens typographic quotes first; transformers'
CLIPTokenizer, like every SD pipeline, does not).
"""

from __future__ import annotations

import gzip
from pathlib import Path

from transformers import CLIPTokenizer

VOCAB_SIZE = 49408
_MERGES = VOCAB_SIZE - 256 * 2 - 2


def _bytes_to_unicode() -> list[str]:
    """CLIP's printable stand-ins for the 256 byte values, in vocabulary order."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(code) for code in codes]


def clip_vocabulary() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP's BPE vocabulary (token -> id) and merges, derived from open_clip's bundled file."""
    import open_clip.tokenizer

    with gzip.open(open_clip.tokenizer.default_bpe(), "rt", encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    merges = [(left, right) for left, right in (line.split() for line in lines[1 : _MERGES + 1])]
    symbols = _bytes_to_unicode()
    vocab = symbols + [s + "</w>" for s in symbols] + [left + right for left, right in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(vocab)}, merges


def build_clip_tokenizer(directory: Path, model_max_length: int = 77) -> CLIPTokenizer:
    """Build CLIP's tokenizer offline and save it to ``directory`` with ``save_pretrained``.

    Args:
        directory: Where the tokenizer files go (created if missing).
        model_max_length: Token window including the start and end markers (77 in all SD models).

    Returns:
        The tokenizer, loadable later with ``CLIPTokenizer.from_pretrained(directory)``.
    """
    vocab, merges = clip_vocabulary()
    # The tokenizers BPE takes merges as pairs; transformers annotates them as strings, which the
    # backend would split wrongly for CLIP's vocabulary.
    tokenizer = CLIPTokenizer(
        vocab=vocab,
        merges=merges,  # type: ignore[arg-type]
        model_max_length=model_max_length,
    )
    Path(directory).mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(directory))
    return tokenizer
