"""Prompting: ideas into prompt specs (LLM or offline) and refiners. Never imports torch."""
