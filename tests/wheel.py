"""Build Lamplighter's wheel from a copy of this tree's sdist files, as `pip wheel` / `python -m build` do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_FILES = ("pyproject.toml", "README.md", "LICENSE", "src")


def build_wheel(destination: Path) -> Path:
    """lamplighter-*.whl in `destination`, built by pip's PEP 517 front end (the tree itself stays clean)."""
    with tempfile.TemporaryDirectory() as source:
        for name in SOURCE_FILES:
            copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
            copy(ROOT / name, Path(source) / name)
        env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(destination),
                               source], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, f"pip wheel failed:\n{done.stdout}\n{done.stderr}"
    [built] = destination.glob("lamplighter-*.whl")
    return built
