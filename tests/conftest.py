"""Shared fixtures: tiny real models built once per test session, offline hub."""

from __future__ import annotations

import os

# Tests never reach the network: huggingface_hub reads this when it is first imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random StableDiffusionPipeline saved with save_pretrained (32x32 images)."""
    from imagineer.pocket.tiny import build_tiny_pipeline

    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny") / "pipe", seed=0)


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random open_clip model in open_clip's hub layout."""
    from imagineer.pocket.tiny import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("tiny") / "clip", seed=0)
