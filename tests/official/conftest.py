"""The authors' FIND checkpoints, proved offline against the reference fixtures.

The fixture root is ``$FIND_OFFICIAL_FIXTURES`` (default ``../shared/find-official`` from the repo
root). Every sub-directory with a ``checkpoint.pt`` is one fixture set (``tiny_t``, ``tiny_l``
here); the tests read sizes, tolerances and inputs from the files, so another fixture set of the
same layout runs unchanged. A missing root fails the run: these tests never skip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[2]


def fixture_root() -> Path:
    root = Path(os.environ.get("FIND_OFFICIAL_FIXTURES", REPO / ".." / "shared" / "find-official"))
    if not root.is_absolute():
        root = REPO / root
    if not (root / "keys").is_dir():
        raise RuntimeError(f"FIND reference fixtures not found at {root} (set FIND_OFFICIAL_FIXTURES)")
    return root.resolve()


def fixture_sets() -> list[str]:
    return sorted(p.name for p in fixture_root().iterdir() if (p / "checkpoint.pt").is_file())


def key_lists() -> list[str]:
    return sorted(p.name for p in (fixture_root() / "keys").glob("*.tsv"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fixture_set" in metafunc.fixturenames:
        metafunc.parametrize("fixture_set", fixture_sets())
    if "key_list" in metafunc.fixturenames:
        metafunc.parametrize("key_list", key_lists())


@pytest.fixture
def fixture_dir(fixture_set: str) -> Path:
    return fixture_root() / fixture_set


def golden_meta(directory: Path) -> dict:
    return json.loads((directory / "golden.json").read_text())


def atol(meta: dict, name: str) -> float:
    return float(meta["tensors"][name].get("atol", meta["tolerance"]["default_atol"]))


def network_input(directory: Path, name: str = "image_A.png") -> np.ndarray:
    from find_ros.image_io import read_rgb

    return read_rgb(directory / "inputs" / name)


def language_dir(directory: Path) -> Path:
    """The fixture's tiny LLaMA: its own ``llm/``, else the one its config names (tiny_l uses tiny_t's)."""
    import yaml

    name = yaml.safe_load((directory / "config.yaml").read_text())["overrides"]["MODEL"]["TEXT"]["NAME"]
    return (directory / name).resolve()
