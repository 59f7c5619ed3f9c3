"""Time to first batch for MNIST and the Tiny-ImageNet subset, cold (mirror) and warm (cache).

    DLNOTES_MIRROR=../shared/data .venv/bin/python bench/data_first_batch.py

Each measurement runs in a fresh Python process, so it includes importing torch: what a reader
waits for when a chapter starts. Cold runs use an empty temporary cache; warm runs reuse it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

CODE = """
import time, torch
t = time.perf_counter()
from dlnotes.data import load_images
data = load_images({name!r}, progress=False)
X, y = data["train"]
batch = X[:256]
print(f"{{time.perf_counter() - t:.2f}}")
"""


def first_batch(name: str, cache: str) -> tuple[float, float]:
    """Return (seconds in process incl. imports, seconds inside load_images to the first batch)."""
    env = os.environ | {"DLNOTES_CACHE": cache}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CODE.format(name=name)], env=env, check=True,
                         capture_output=True, text=True)  # fmt: skip
    return time.perf_counter() - start, float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if not os.environ.get("DLNOTES_MIRROR"):
        sys.exit("set DLNOTES_MIRROR to the dataset mirror (e.g. ../shared/data)")
    print(f"{'dataset':28} {'run':5} {'process s':>10} {'load s':>8}")
    for name in ("mnist", "tiny-imagenet-100-subset"):
        with tempfile.TemporaryDirectory() as cache:
            for run in ("cold", "warm", "warm"):
                total, load = first_batch(name, cache)
                print(f"{name:28} {run:5} {total:10.2f} {load:8.2f}")


if __name__ == "__main__":
    main()
