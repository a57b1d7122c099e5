"""Prompting: ideas into prompt specs (LLM or offline) and refiners. Never imports torch.

One flat public API:

- Specs: `PromptSpec`, `RenderedPrompt`, `ScoredSpec`.
- Data: `load_styles`, `StyleLibrary`, `StylePreset`, A1111 and Fooocus import/export,
  `load_vocabulary`, `vocabulary_from_world`, `Vocabulary`.
- Expanders: `OfflineExpander`, `LLMExpander` (over `OpenAIChat` or `LangChainChat`), with
  `Expansion` and `Provenance` records.
- Refiners: `SearchRefiner`, `LLMRefiner`, with `Refinement` records; `concepts_for` gives the
  concept phrases to score, `weakest_concepts` reads them back.
"""

from imagineer.prompting.chat import ChatBackend, ChatMessage, ChatReply, RetryPolicy
from imagineer.prompting.concepts import concepts_for, weakest_concepts
from imagineer.prompting.expansion import (
    Expander,
    Expansion,
    FewShot,
    Provenance,
    Refinement,
    split_constraints,
)
from imagineer.prompting.llm import LLMExpander
from imagineer.prompting.offline import OfflineExpander
from imagineer.prompting.refiners import (
    LLMRefiner,
    Refiner,
    SearchRefiner,
    SearchRefinerConfig,
    critique,
    ranked,
)
from imagineer.prompting.spec import (
    EMPHASIS_MAX,
    EMPHASIS_MIN,
    STRONG_EMPHASIS,
    PromptSpec,
    RenderedPrompt,
    ScoredSpec,
)
from imagineer.prompting.styles import (
    StyleLibrary,
    StylePreset,
    export_a1111_csv,
    export_fooocus_json,
    import_a1111_csv,
    import_fooocus_json,
    load_styles,
)
from imagineer.prompting.vocabulary import (
    TermGroup,
    TermOption,
    Vocabulary,
    load_vocabulary,
    vocabulary_from_world,
)

# The two chat backends import their SDKs (openai, langchain-core: about a second together), so
# they load on first use; offline engines never pay for them.
_LAZY = {
    "LangChainChat": "imagineer.prompting.langchain_chat",
    "OpenAIChat": "imagineer.prompting.openai_chat",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EMPHASIS_MAX",
    "EMPHASIS_MIN",
    "STRONG_EMPHASIS",
    "ChatBackend",
    "ChatMessage",
    "ChatReply",
    "Expander",
    "Expansion",
    "FewShot",
    "LLMExpander",
    "LLMRefiner",
    "LangChainChat",
    "OfflineExpander",
    "OpenAIChat",
    "PromptSpec",
    "Provenance",
    "Refinement",
    "Refiner",
    "RenderedPrompt",
    "RetryPolicy",
    "ScoredSpec",
    "SearchRefiner",
    "SearchRefinerConfig",
    "StyleLibrary",
    "StylePreset",
    "TermGroup",
    "TermOption",
    "Vocabulary",
    "concepts_for",
    "critique",
    "export_a1111_csv",
    "export_fooocus_json",
    "import_a1111_csv",
    "import_fooocus_json",
    "load_styles",
    "load_vocabulary",
    "ranked",
    "split_constraints",
    "vocabulary_from_world",
    "weakest_concepts",
]
