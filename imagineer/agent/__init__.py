"""The agent: expand -> render -> score -> refine, written out as one loop."""
