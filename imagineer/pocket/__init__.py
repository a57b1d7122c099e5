"""The pocket world: a tiny procedural universe (world, renderer, captions, judge, PocketBench)
and the tiny models trained on it, so imagineer runs end to end without downloads.
"""
