"""The README's demo: a Hub-managed culler (real configurable-http-proxy when installed) culls."""

import re
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "demo" / "run_demo.py"


def test_demo_culls_every_server_as_a_managed_service(no_hub_env):
    result = subprocess.run(
        [sys.executable, str(DEMO), "--timeout=5", "--limit=60"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # The idle pair goes at the first pass, the fresh three once 5 s have passed: at the first
    # pass after that, so at 5 to 10 s plus the phase of the passes against their start.
    assert "Culling server demo-1 (inactive for 01:00:" in out
    fresh = re.search(r"Culling server demo-3 \(inactive for 00:00:(\d\d)\)", out)
    assert fresh and 5 <= int(fresh.group(1)) < 60, out
    assert "All demo servers were culled" in out
