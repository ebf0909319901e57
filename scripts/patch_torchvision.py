"""Make the CUDA-built torchvision 0.28 wheel import on the CPU build of torch.

torchvision/_meta_registrations.py registers fake kernels for torchvision::nms and torchvision::qnms
without the ``_has_ops()`` guard that its other registrations use. On CPU torch the compiled ops do not
load, so the registration raises ``operator torchvision::nms does not exist`` and ``import torchvision``
fails, which takes nerfstudio down with it. We add the missing guard. Idempotent; compiled ops such as
``ops.nms`` still do not work on CPU and find_ros never calls them.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

MARK = "# find_ros: guarded"


def main() -> int:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        print("[setup] torchvision not installed; nothing to patch")
        return 0
    path = Path(spec.origin).parent / "_meta_registrations.py"
    text = path.read_text()
    if MARK in text:
        return 0
    # Each unguarded registration looks like:
    #   @torch.library.register_fake("torchvision::nms")
    #   def meta_nms(...):
    pattern = re.compile(r'^@torch\.library\.register_fake\("torchvision::(nms|qnms)"\)\n', re.M)
    if not pattern.search(text):
        print(f"[setup] {path}: no unguarded nms/qnms registration found; leaving it as is")
        return 0
    patched = pattern.sub(
        lambda m: f'@(lambda f: torch.library.register_fake("torchvision::{m.group(1)}")(f) '
        f"if torchvision.extension._has_ops() else f)  {MARK}\n",
        text,
    )
    path.write_text(patched)
    print(f"[setup] patched {path} so torchvision imports on CPU torch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
