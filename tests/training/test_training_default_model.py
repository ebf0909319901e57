"""The shipped default model still scores what its model card says on the card's check set.

The card (find_ros/default_model/MODEL_CARD.md) carries a JSON block naming a small held-out set
(a seed of the synthetic world the model never trained on) and the metrics the model reached on
it. This test renders that set, evaluates the shipped model through the same code as
``python -m training.evaluate``, and compares every number within the card's tolerance.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from find_ros.model import PACKAGED_MODEL_DIR

CARD = PACKAGED_MODEL_DIR / "MODEL_CARD.md"


def _check_set() -> dict:
    text = CARD.read_text()
    match = re.search(r"<!-- check-set -->\s*```json\s*(\{.*?\})\s*```", text, re.S)
    assert match, f"{CARD} has no check-set JSON block"
    return json.loads(match.group(1))


def test_card_check_set_is_held_out_and_covers_every_task() -> None:
    spec = _check_set()
    assert spec["data"]["seed"] != spec["trained_on_seed"]
    assert set(spec["metrics"]) >= {"generic.PQ", "grounded.cIoU", "interleave_grounding.cIoU",
                                    "image_text_retrieval.IR@1", "interleave_retrieval.IR@5"}


@pytest.fixture
def one_thread():  # noqa: ANN201
    import torch

    # On a shared 2-core machine one thread runs these small ops many times faster than two.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_default_model_reproduces_its_card(tmp_path: Path, one_thread: None) -> None:
    from find_ros.model import FindModel
    from find_ros.scenes import make_dataset
    from training.data.dataset import load_split
    from training.data.sources import discover
    from training.evaluate import evaluate

    spec = _check_set()
    data_spec = spec["data"]
    make_dataset(tmp_path / "ds", data_spec["images"], seed=data_spec["seed"], splits=(data_spec["split"],),
                 size=tuple(data_spec["size"]), progress=False)
    model = FindModel.from_pretrained(PACKAGED_MODEL_DIR, device="cpu")
    assert not model.untrained
    result = evaluate(model, load_split(discover(tmp_path / "ds", data_spec["split"])), seed=spec.get("visual_seed", 0))
    tolerance = spec["tolerance"]
    for dotted, expected in spec["metrics"].items():
        task, metric = dotted.split(".", 1)
        assert result[task][metric] == pytest.approx(expected, abs=tolerance), dotted
