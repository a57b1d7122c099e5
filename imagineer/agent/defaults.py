"""The default components: the bundled pocket models, with offline engines or an LLM."""

from __future__ import annotations

from imagineer.generators import DiffusersGenerator
from imagineer.pocket.paths import WORLD_FILE, pocket_generator_dir, pocket_scorer_dir
from imagineer.prompting.expansion import Expander
from imagineer.prompting.llm import LLMExpander
from imagineer.prompting.offline import OfflineExpander
from imagineer.prompting.openai_chat import OpenAIChat
from imagineer.prompting.refiners import LLMRefiner, Refiner, SearchRefiner, SearchRefinerConfig
from imagineer.prompting.vocabulary import vocabulary_from_world
from imagineer.scoring import ClipScorer


def pocket_components(
    model: str | None = None,
    scorer: str | None = None,
    llm: str | None = None,
    llm_base_url: str | None = None,
) -> tuple[Expander, DiffusersGenerator, ClipScorer, Refiner]:
    """Expander, generator, scorer and refiner for a run.

    The offline engines speak the pocket world's vocabulary. With ``llm``, an OpenAI-compatible
    model expands and refines instead, falling back to the offline engines (logged and recorded
    in the run) when it fails; the API key comes from ``OPENAI_API_KEY`` and is never recorded.

    Args:
        model: A diffusers model instead of the pocket generator.
        scorer: An open_clip model spec instead of the pocket scorer.
        llm: A chat model name served at ``llm_base_url`` (OpenAI, Ollama, vLLM, llama.cpp...).
        llm_base_url: The endpoint, e.g. ``http://localhost:11434/v1``; None is OpenAI's.
    """
    vocabulary = vocabulary_from_world(WORLD_FILE)
    generator = DiffusersGenerator(model or str(pocket_generator_dir()))
    expander: Expander = OfflineExpander(vocabulary)
    # The search moves guidance around the generator's own default (4 for the pocket model,
    # 7.5 for Stable Diffusion), not around a fixed number.
    search = SearchRefinerConfig(guidance_default=float(generator.default("guidance")))
    refiner: Refiner = SearchRefiner(vocabulary, config=search)
    if llm:
        expander = LLMExpander(OpenAIChat(llm, base_url=llm_base_url), fallback=expander)
        refiner = LLMRefiner(OpenAIChat(llm, base_url=llm_base_url), fallback=refiner)
    return expander, generator, ClipScorer(scorer or str(pocket_scorer_dir())), refiner
