"""The architecture's figures, for this checkout or any commit: modules directly under assist/, imports
against the layer order (tests/layers.py), and the largest cyclomatic complexity (radon).

Usage: .venv/bin/python bench/architecture.py [COMMIT ...]   (default: the working tree)
Needs the bench extra for radon: pip install -e '.[bench]'.

A commit is measured on its files (git archive) with today's layer rules.
"""

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from radon.complexity import cc_visit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import layers  # noqa: E402  (tests/layers.py: the layer rules CI enforces)


def figures(root: Path) -> dict:
    layers.ROOT = root
    files = layers.source_files()
    blocks = [(block.complexity, f"{path.relative_to(root)}:{block.lineno} {block.fullname}")
              for path in files for block in cc_visit(path.read_text(encoding="utf-8"))]
    top = sorted(blocks, reverse=True)[:3]
    return {"modules directly under assist/": len(list((root / "assist").glob("*.py"))),
            "imports against the layer order": len(layers.violations(files)),
            "largest cyclomatic complexity": "; ".join(f"{cc} {where}" for cc, where in top)}


def at_commit(commit: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "assist", "channels"],
                             check=True, capture_output=True).stdout
    with tempfile.TemporaryFile() as f:
        f.write(archive)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(into, filter="data")
    return into


def main() -> None:
    targets = sys.argv[1:] or [None]
    for commit in targets:
        with tempfile.TemporaryDirectory() as tmp:
            root = at_commit(commit, Path(tmp)) if commit else ROOT
            print(commit or "working tree")
            for name, value in figures(root).items():
                print(f"  {name}: {value}")


if __name__ == "__main__":
    main()
