"""Writing results to disk: atomically, so an interrupted run never leaves a half-written file."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, value: Any) -> None:
    """Write ``value`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode())


def atomic_save_png(path: Path, image: Image.Image, text: dict[str, str] | None = None) -> None:
    """Save ``image`` as PNG atomically, with ``text`` as PNG text chunks (A1111-style metadata)."""
    from io import BytesIO

    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    buffer = BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    atomic_write_bytes(path, buffer.getvalue())


def new_run_folder(root: Path, title: str) -> Path:
    """A fresh folder ``root/YYYYmmdd-HHMMSS-title-slug`` (suffixed if it exists)."""
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder = Path(root) / f"{stamp}-{slug(title)}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = Path(root) / f"{stamp}-{slug(title)}-{suffix}"
    return folder


def slug(text: str, limit: int = 40) -> str:
    """A file-name-safe short form of ``text`` ('A fox, in the snow!' -> 'a-fox-in-the-snow')."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:limit].rstrip("-") or "untitled"
