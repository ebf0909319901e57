"""Reading a trained find-field run back: its config.yml, its latest checkpoint, the FIND model it
was distilled from, and the transform back to the dataset's own world frame.

Safe by construction, not by switching safety off:
* config.yml is nerfstudio's YAML with Python object tags; it is read with a loader that constructs
  objects only from nerfstudio, find_ros, pathlib and torch.optim (anything else is refused);
* checkpoints are read with ``torch.load(weights_only=True)``. find-field checkpoints hold only
  tensors and builtins (see :mod:`find_ros.fields.schedule`); for runs written with nerfstudio's
  numpy-valued schedule the numpy scalar types are allowlisted for this one call, still weights-only;
* the FIND model is found by the fingerprint stored in the checkpoint, so a query never embeds
  with a different model than the one the field learnt from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

METHOD_NAME = "find-field"
ALLOWED_PREFIXES = ("nerfstudio.", "find_ros.", "pathlib.", "torch.optim.")
FINGERPRINT_KEY = "_model.teacher_fingerprint"


class _RunConfigLoader(yaml.UnsafeLoader):
    """nerfstudio's config loader restricted to the modules a find-field config names."""

    def _check(self, name: str, mark: Any) -> None:
        if not name.startswith(ALLOWED_PREFIXES):
            raise yaml.constructor.ConstructorError(
                None, None, f"config.yml names {name!r}; only {', '.join(ALLOWED_PREFIXES)} objects are allowed", mark)

    def find_python_name(self, name: str, mark: Any) -> Any:  # type: ignore[override]
        self._check(name, mark)
        return super().find_python_name(name, mark)

    def find_python_module(self, name: str, mark: Any) -> Any:  # type: ignore[override]
        self._check(name + ".", mark)
        return super().find_python_module(name, mark)


def read_run_config(path: str | Path) -> Any:
    """The TrainerConfig of a find-field run's config.yml."""
    from nerfstudio.engine.trainer import TrainerConfig

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"run config not found: {path}")
    try:
        config = yaml.load(path.read_text(), Loader=_RunConfigLoader)  # noqa: S506 - restricted, see above
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not a readable nerfstudio config ({error})") from error
    if not isinstance(config, TrainerConfig):
        raise ValueError(f"{path}: not a nerfstudio run config")
    if config.method_name != METHOD_NAME:
        raise ValueError(f"{path}: a {config.method_name!r} run; this reads {METHOD_NAME!r} runs")
    return config


def latest_checkpoint(model_dir: Path) -> tuple[Path, int]:
    steps = []
    for path in model_dir.glob("step-*.ckpt") if model_dir.is_dir() else []:
        match = re.fullmatch(r"step-(\d+)\.ckpt", path.name)
        if match:
            steps.append((int(match.group(1)), path))
    if not steps:
        raise FileNotFoundError(f"no checkpoint (step-*.ckpt) in {model_dir}: has the run saved one yet?")
    step, path = max(steps)
    return path, step


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A nerfstudio checkpoint, weights-only."""
    numpy_scalars = [np.core.multiarray.scalar, np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.float32))]
    try:
        with torch.serialization.safe_globals(numpy_scalars):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - UnpicklingError, RuntimeError, EOFError ...
        raise ValueError(f"{path}: not a loadable weights-only checkpoint ({error})") from error
    if not isinstance(state, dict) or "pipeline" not in state:
        raise ValueError(f"{path}: not a nerfstudio checkpoint (no 'pipeline' state)")
    return state


def match_find_model(fingerprint: str, configured: Path | None, override: Path | None) -> Path:
    """The FIND model directory with this fingerprint: ``override`` if given, else the run's
    configured model, $FIND_ROS_MODEL / the packaged default, or the untrained placeholder."""
    from find_ros.fields.teacher import model_fingerprint
    from find_ros.model import default_model_dir
    from find_ros.model.tiny import UNTRAINED_NAME, cache_dir

    candidates = [override] if override is not None else [configured, default_model_dir(), cache_dir() / UNTRAINED_NAME]
    tried = []
    for candidate in candidates:
        if candidate is None or not (Path(candidate) / "config.json").is_file():
            continue
        tried.append(str(candidate))
        if model_fingerprint(candidate) == fingerprint:
            return Path(candidate)
    where = ", ".join(tried) or "no FIND model found"
    raise ValueError(f"the field was distilled from FIND model {fingerprint[:16]}...; it is not {where}: "
                     "pass the model directory it was trained with (--find-model)")


@dataclass
class LoadedRun:
    config: Any  # nerfstudio TrainerConfig
    pipeline: Any  # FindFieldPipeline, eval mode
    step: int
    checkpoint: Path
    run_dir: Path
    find_model_dir: Path

    @property
    def model(self) -> Any:  # FindFieldModel
        return self.pipeline.model

    def world_from_nerfstudio(self) -> np.ndarray | None:
        """4x4 taking points of nerfstudio's normalised frame back to the dataset's world frame
        (inverse of the dataparser's transform and scale), or None if the run has no
        dataparser_transforms.json."""
        path = self.run_dir / "dataparser_transforms.json"
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        forward = np.eye(4)
        forward[:3, :4] = np.asarray(data["transform"], dtype=np.float64)
        forward[:3] *= float(data["scale"])
        return np.linalg.inv(forward)


def load_run(config_path: str | Path, *, find_model: str | Path | None = None, data: str | Path | None = None,
             device: str = "auto") -> LoadedRun:
    """A trained find-field run, ready for queries (eval mode, no training images read)."""
    config_path = Path(config_path)
    config = read_run_config(config_path)
    run_dir = config_path.parent
    checkpoint, step = latest_checkpoint(run_dir / config.relative_model_dir)
    state = load_checkpoint(checkpoint)
    if FINGERPRINT_KEY not in state["pipeline"]:
        raise ValueError(f"{checkpoint}: no FIND model fingerprint; not a find-field checkpoint")
    fingerprint = bytes(state["pipeline"][FINGERPRINT_KEY].tolist()).hex()
    model_cfg = config.pipeline.model
    model_cfg.find_model = match_find_model(fingerprint, model_cfg.find_model,
                                            Path(find_model) if find_model is not None else None)
    datamanager = config.pipeline.datamanager
    if data is not None:
        datamanager.data = Path(data)
    source = datamanager.data or datamanager.dataparser.data
    if source is None or not Path(source).exists():
        raise FileNotFoundError(f"the run's dataset {source} is not there (relative paths are from where ns-train "
                                "ran): pass --data DIR")
    datamanager.dataparser.data = Path(source)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    config.load_dir = run_dir / config.relative_model_dir
    pipeline = config.pipeline.setup(device=device, test_mode="inference")
    pipeline.eval()
    pipeline.load_pipeline(state["pipeline"], step)
    return LoadedRun(config, pipeline, step, checkpoint, run_dir, Path(model_cfg.find_model))
