"""The training loop: frozen encoders stay frozen, DDP replicas stay identical, and a run killed
with SIGKILL and resumed ends bit-identical to an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from training_helpers import subprocess_env, write_config

TRAIN = [sys.executable, "-m", "training.train"]


def test_training_moves_the_interface_and_leaves_encoders_untouched(tiny_model: Path, synthetic_data: Path,
                                                                      tmp_path: Path) -> None:
    from find_ros.model import FindModel
    from training.config import load_config
    from training.distributed import init_distributed
    from training.train import train

    before = FindModel.from_pretrained(tiny_model, device="cpu").state_dict()
    cfg = load_config(write_config(tmp_path, tiny_model, synthetic_data, tmp_path / "run"))
    result = train(cfg, init_distributed("cpu"))
    after = result.model.state_dict()
    # The cache wrappers add a level to the encoders' key names; compare by the encoder's own keys.
    frozen = {k.replace(".inner.", "."): v for k, v in after.items() if k.startswith(("vision_encoder.", "language_encoder."))}
    encoder_keys = [k for k in before if k.startswith(("vision_encoder.", "language_encoder."))]
    assert encoder_keys and set(encoder_keys) == set(frozen)
    assert all(torch.equal(before[k], frozen[k]) for k in encoder_keys)
    moved = [k for k in before if k.startswith(("interface.", "heads.", "neck.", "sampler.")) and not torch.equal(before[k], after[k])]
    assert len(moved) > 20
    # The exported model loads through the public API and says it is trained.
    loaded = FindModel.from_pretrained(result.export, device="cpu")
    assert not loaded.untrained
    assert all(torch.equal(loaded.state_dict()[k], after[k]) for k in moved)
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step_*"))
    assert checkpoints == ["step_00000002", "step_00000004"]
    assert (tmp_path / "run" / "tensorboard").is_dir()


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model" / "model.safetensors"))


def test_killed_run_resumes_bit_identically(tiny_model: Path, synthetic_data: Path, tmp_path: Path) -> None:
    env = subprocess_env()
    steps = {"schedule.max_steps": 8}
    (tmp_path / "a").mkdir()
    straight = write_config(tmp_path / "a", tiny_model, synthetic_data, tmp_path / "a" / "run")
    sets = [f"--set={k}={v}" for k, v in steps.items()]
    subprocess.run([*TRAIN, "--config", str(straight), *sets], check=True, env=env, capture_output=True, timeout=300)

    (tmp_path / "b").mkdir()
    killed = write_config(tmp_path / "b", tiny_model, synthetic_data, tmp_path / "b" / "run")
    proc = subprocess.Popen([*TRAIN, "--config", str(killed), *sets], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    latest = tmp_path / "b" / "run" / "checkpoints" / "latest"
    deadline = time.monotonic() + 240
    while not latest.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert not (tmp_path / "b" / "run" / "model").exists(), "the run finished before it could be killed"
    resumed = subprocess.run([*TRAIN, "--config", str(killed), *sets], check=True, env=env, capture_output=True,
                             timeout=300)
    assert "resuming from" in resumed.stderr.decode()
    a, b = _weights(tmp_path / "a" / "run"), _weights(tmp_path / "b" / "run")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


DRIVER = """
import sys
from pathlib import Path
import torch
from safetensors.torch import save_file
from find_ros.model.checkpoint import trainable_state
from training.config import load_config
from training.distributed import init_distributed, shutdown
from training.train import train

info = init_distributed("cpu")
result = train(load_config(sys.argv[1]), info)
state = trainable_state(result.model.state_dict())
save_file({k: v.contiguous() for k, v in state.items()}, str(Path(sys.argv[2]) / f"rank{info.rank}.safetensors"))
shutdown()
"""


def test_two_process_gloo_replicas_stay_identical(tiny_model: Path, synthetic_data: Path, tmp_path: Path) -> None:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    cfg = write_config(tmp_path, tiny_model, synthetic_data, tmp_path / "run", batch_size=2)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
         "--master_port", str(29500 + os.getpid() % 1000), str(driver), str(cfg), str(tmp_path)],
        env=subprocess_env(), capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    r0, r1 = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    assert r0.keys() == r1.keys()
    assert all(torch.equal(r0[k], r1[k]) for k in r0)
    # The replicas did train (they moved away from the initial weights) on different images.
    init = load_file(str(tiny_model / "model.safetensors"))
    assert any(not torch.equal(init[k], r0[k]) for k in init)
    assert json.loads((tmp_path / "run" / "train_config.json").read_text())["run"]["batch_size"] == 2
