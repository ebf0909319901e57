"""Settings and helpers shared by the feature-field tests (a module of its own: every test
directory has a conftest.py, so `import conftest` would be ambiguous)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
FRAMES, SIZE, SEED = 6, (96, 72), 5
ITERATIONS = 3
CROP_SCALES = ("0.3", "0.6")  # 45 crops per 96x72 image: a quick teacher
SMALL = [
    "--pipeline.model.log2-hashmap-size", "13", "--pipeline.model.num-levels", "6", "--pipeline.model.max-res", "128",
    "--pipeline.model.num-proposal-samples-per-ray", "32", "16", "--pipeline.model.num-nerf-samples-per-ray", "16",
    "--pipeline.model.feature-log2-hashmap-size", "13", "--pipeline.model.feature-num-levels", "6",
    "--pipeline.model.feature-max-res", "64", "--pipeline.datamanager.train-num-rays-per-batch", "128",
    "--pipeline.model.crop-scales", *CROP_SCALES,
]


@dataclass
class Run:
    config: Path
    output: str


def teacher_files(field_root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted((field_root / "cache" / "field_teacher").rglob("*.safetensors"))}


def ns_train(field_root: Path, env: dict[str, str], find: Path, scene: Path, name: str, *extra: str) -> Run:
    command = [str(BIN / "ns-train"), "find-field", "--output-dir", str(field_root / "outputs"),
               "--experiment-name", "scene", "--timestamp", name, "--max-num-iterations", str(ITERATIONS),
               "--vis", "tensorboard", "--machine.device-type", "cpu", "--mixed-precision", "False",
               "--pipeline.model.find-model", str(find), *SMALL, *extra,
               "nerfstudio-data", "--data", str(scene / "nerfstudio")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return Run(field_root / "outputs" / "scene" / "find-field" / name / "config.yml", output)
