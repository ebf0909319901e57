"""The perception graph on a converted release (decoder style "official"), over real DDS on
loopback: a text instruction and a crop instruction (the authors' cross-image path) give per-frame
masks equal to FindModel.ground on the same frames. Every result is waited for on reliable QoS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from nodes.conftest import frame, peer, perception, wait_active  # noqa: F401  (fixtures)
from nodes.test_grounding_node import Answers, Camera

from find_ros.model.convert import import_find

from .conftest import fixture_root, language_dir, network_input
from .test_surfaces import SURFACE_SET

pytestmark = pytest.mark.timeout(300)


def test_text_and_crop_instructions_match_find_model_ground(peer, perception, tmp_path: Path) -> None:  # noqa: F811
    from find_ros_msgs.msg import Grounding, InstructionStatus

    from find_ros.model import FindModel
    from find_ros.nodes.instruction_msgs import build_instruction
    from find_ros.nodes.params import GroundingParams

    directory = fixture_root() / SURFACE_SET
    model_dir = tmp_path / "model"
    import_find(directory / "checkpoint.pt", model_dir, config_path=directory / "config.yaml",
                language=str(language_dir(directory)))
    topics = GroundingParams()
    wait_active(peer, perception("grounding", model=str(model_dir), image_reliability="reliable"))
    results = peer.collect(Grounding, topics.grounding_topic)
    instructions = peer.instruction_publisher(topics)
    crop = network_input(directory, "image_B.png")[30:90, 40:120].copy()
    sent = {"text": ("[the blue ring] behind the table", []), "crop": ("<0> near [the small black sphere]", [crop])}
    answers = Answers(peer)
    for instruction_id, (text, crops) in sent.items():
        message = build_instruction(text, crops, instruction_id=instruction_id)
        answer = answers.after(lambda m=message: instructions.publish(m), instruction_id, timeout_s=120)
        assert answer.status == InstructionStatus.ACCEPTED, answer.reason
    camera = Camera(peer)
    frames = [network_input(directory, "image_A.png"), frame(3, 96, 128)]
    model = FindModel.from_pretrained(model_dir, device="cpu")
    # Compute as the node's process does: the thread count changes float rounding (a mask pixel
    # whose logit is ~1e-5 from 0 can flip), and this suite runs on one thread.
    threads = int(subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                                 capture_output=True, text=True, check=True).stdout)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _compare(model, sent, frames, camera, results)
    finally:
        torch.set_num_threads(before)


def _compare(model, sent, frames, camera, results) -> None:  # noqa: ANN001
    from find_ros.nodes.images import image_msg_to_rgb

    encoded = {key: model.encode_instruction(text, crops) for key, (text, crops) in sent.items()}
    for rgb in frames:
        mine = camera.send_and_wait(rgb, results)
        assert sorted(r.instruction_id for r in mine) == sorted(sent)
        image = model.encode_image(rgb)
        for result in mine:
            expected = model.ground(image, encoded[result.instruction_id])[0]
            assert [e.label for e in result.entities] == [e.label for e in expected.entities]
            for got, want in zip(result.entities, expected.entities):
                mask = image_msg_to_rgb(got.mask)[..., 0] == 255 if got.mask.width else np.zeros_like(want.mask)
                assert np.array_equal(mask, want.mask), (result.instruction_id, got.label)
