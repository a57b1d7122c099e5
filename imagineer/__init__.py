"""imagineer: turns short ideas into great images.

An LLM (or the offline engine) expands an idea into detailed prompts, a local diffusion model
renders candidates, CLIP scores them, and the scores drive the next prompts.
"""

__version__ = "0.1.0"
