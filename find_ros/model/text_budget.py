"""How many language-model tokens an instruction costs, and the most the model reads.

One rule, used twice: ``FindModel.encode_instruction`` enforces it, and the perception nodes check it
when an instruction arrives (from the model directory's tokenizer alone, before any weights are
loaded), so a sender learns at once that a 400-token text is too long. An instruction is counted as
the language model reads it: each ``<k>`` stands as the model's placeholder word
(:class:`~find_ros.model.sampler.InterleaveText`), special tokens included.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from find_ros.instructions import InstructionError, ParsedInstruction
from find_ros.model.sampler import InterleaveText


class InstructionTooLong(InstructionError):
    """An instruction with more tokens than the language model reads."""


def count_tokens(tokenizer: Any, text: str) -> int:
    """Tokens ``text`` costs the language model, special tokens included."""
    return len(tokenizer(text, add_special_tokens=True)["input_ids"])


@dataclass(frozen=True)
class TextBudget:
    """A tokenizer, the most tokens read (``limit``) and the word standing in for a visual entity."""

    tokenizer: Any
    limit: int
    placeholder: str
    # A fast tokenizer refuses to be used from two threads at once ("Already borrowed"); a node checks
    # arrivals on its executor's threads (a topic callback and a service may run together).
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def of_model_dir(cls, model_dir: str | Path) -> TextBudget:
        """The budget of a saved model: its config.json and its language model's tokenizer."""
        from find_ros.model import checkpoint
        from find_ros.model.config import FindConfig
        from find_ros.model.encoders import load_language_tokenizer, token_limit

        config = FindConfig.load(Path(model_dir) / checkpoint.CONFIG_NAME)
        tokenizer, positions = load_language_tokenizer(config.language_model, model_dir)
        return cls(tokenizer, token_limit(config.max_text_tokens, positions), config.placeholder_word)

    def tokens(self, text: str) -> int:
        with self._lock:
            return count_tokens(self.tokenizer, text)

    def check(self, parsed: ParsedInstruction) -> InterleaveText:
        """The sentence the language model will read; InstructionTooLong when it is over the limit."""
        layout = InterleaveText(parsed, self.placeholder)
        count = self.tokens(layout.text)
        if count > self.limit:
            raise InstructionTooLong(
                f"instruction is {count} tokens long; the language model reads at most {self.limit}"
            )
        return layout
