"""What a query looks for: the CLI's arguments, and a bad query in one line."""

from __future__ import annotations

import numpy as np
import pytest


def test_query_arguments() -> None:
    from find_ros.fields.query import parse_query

    crop = np.zeros((4, 4, 3), np.uint8)
    assert parse_query("the box", [], None).kind == "text"
    assert parse_query(None, [crop], None).kind == "crop"
    assert parse_query(None, [crop, crop], "<0> left of <1>").kind == "instruction"
    for args, message in [(("a", [crop], None), "not with --text"), ((None, [], None), "nothing to look for"),
                          ((None, [crop, crop], None), "need an --instruction"), (("a", [], "b"), "not both")]:
        with pytest.raises(ValueError, match=message):
            parse_query(*args)


def test_cli_reports_a_bad_query_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from find_ros.cli import main

    assert main(["field", "query", "--config", "nowhere/config.yml"]) == 2
    assert "nothing to look for" in capsys.readouterr().err
