"""The benchmark suite still runs (small sizes, one run). It measures nothing: the figures are
in docs/benchmarks.md, made by `python bench/suite.py`."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(600)
def test_the_benchmark_suite_runs(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "suite.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = (tmp_path / "benchmarks.md").read_text()
    sections = (
        "## 1. Cull throughput",
        "## 2. Scan cost",
        "## 3. The culler's own cost",
        "## 4. Start-up",
        "## 5. The page",
        "## 6. A flood of made-up tokens",
        "## 7. The notice in JupyterLab",
    )
    for section in sections:
        assert section in report
    assert "jupyterhub-idle-culler" in report
    assert (tmp_path / "bench-throughput.png").stat().st_size > 0
    assert (tmp_path / "bench-scale.png").stat().st_size > 0
