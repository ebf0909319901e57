"""Loading a run: the restricted config loader, and the FIND model a field learnt from."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_run_config_loader_refuses_foreign_objects(tmp_path: Path) -> None:
    from find_ros.fields.loading import read_run_config

    evil = tmp_path / "config.yml"
    evil.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ValueError, match="only nerfstudio"):
        read_run_config(evil)
    other = tmp_path / "nerfacto.yml"
    other.write_text("!!python/object:nerfstudio.engine.trainer.TrainerConfig\nmethod_name: nerfacto\n")
    with pytest.raises(ValueError, match="'nerfacto' run"):
        read_run_config(other)
    with pytest.raises(FileNotFoundError):
        read_run_config(tmp_path / "missing.yml")


def test_a_query_uses_the_find_model_the_field_learnt_from(tiny_find: Path) -> None:
    from find_ros.fields.loading import match_find_model
    from find_ros.fields.teacher import model_fingerprint

    assert match_find_model(model_fingerprint(tiny_find), None, tiny_find) == tiny_find
    assert match_find_model(model_fingerprint(tiny_find), tiny_find, None) == tiny_find
    with pytest.raises(ValueError, match="--find-model"):
        match_find_model("ab" * 32, tiny_find, None)
    with pytest.raises(ValueError, match="--find-model"):
        match_find_model("ab" * 32, None, tiny_find)
