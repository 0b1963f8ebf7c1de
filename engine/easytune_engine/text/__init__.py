"""Built-in text encoder (offline): a never-failing tokeniser and a small transformer."""

from .encoder import (
    MAX_PROMPT_CHARS,
    TextEncoder,
    TextEncoderConfig,
    TextEncoderLike,
    TextEncoding,
    check_prompts,
    load_text_encoder,
)
from .tokenizer import TokenBatch, Tokenizer, TokenizerConfig, normalize_text

__all__ = [
    "MAX_PROMPT_CHARS",
    "TextEncoder",
    "TextEncoderConfig",
    "TextEncoderLike",
    "TextEncoding",
    "TokenBatch",
    "Tokenizer",
    "TokenizerConfig",
    "check_prompts",
    "load_text_encoder",
    "normalize_text",
]
