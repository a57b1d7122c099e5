"""Scoring: how well images match their text (open_clip today; more scorers plug in here)."""

from imagineer.scoring.base import ImageScore, Scorer
from imagineer.scoring.clip_scorer import ClipScorer, ClipScorerConfig

__all__ = ["ClipScorer", "ClipScorerConfig", "ImageScore", "Scorer"]
