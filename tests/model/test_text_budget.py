"""The token budget a node checks on arrival is the one the model enforces when it encodes."""

from __future__ import annotations

import pytest

from find_ros.instructions import parse_instruction
from find_ros.model import FindModel
from find_ros.model.text_budget import InstructionTooLong, TextBudget


def test_the_budget_read_from_the_model_dir_is_the_models_own(tiny_model_dir) -> None:
    budget = TextBudget.of_model_dir(tiny_model_dir)
    model = FindModel.from_pretrained(tiny_model_dir, device="cpu")
    assert budget.limit == model.language_encoder.token_limit(model.config.max_text_tokens)
    fits = parse_instruction("[the red mug] left of <0>", 1)
    assert budget.check(fits).text == "the red mug left of " + model.config.placeholder_word
    too_long = " ".join(["cup"] * 400)
    with pytest.raises(InstructionTooLong, match=f"402 tokens long; the language model reads at most {budget.limit}"):
        budget.check(parse_instruction(too_long, 0))
    with pytest.raises(ValueError, match=f"402 tokens long; the language model reads at most {budget.limit}"):
        model.encode_instruction(too_long)
