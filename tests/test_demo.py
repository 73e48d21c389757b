"""The README's demo, checked: a Hub with real JupyterLab servers and the culler as a managed
service with its page; alice is warned in her server's notice and kept, bob is culled, and the
operators' view shows it (``demo/run_demo.py --check``, with shorter times than a person's)."""

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import single_user_servers

DEMO = Path(__file__).resolve().parents[1] / "demo" / "run_demo.py"

pytestmark = pytest.mark.timeout(300)


def test_the_demo_warns_keeps_and_culls(no_hub_env):
    before = single_user_servers()
    result = subprocess.run(
        [sys.executable, str(DEMO), "--check", "--timeout=40", "--warn-before=25", "--limit=200"],
        capture_output=True,
        text=True,
        timeout=280,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Warning user alice: server alice will be culled at" in out
    assert "alice's JupyterLab: 'Stops in" in out and "Keep running 1 h" in out
    assert "Keep-alive: server alice kept running until" in out
    assert "Culling server bob" in out
    assert "Culling server alice" not in out
    assert "keep-alives in force: ['alice']" in out
    # The command line printed is the one the Hub runs, every option included.
    assert (
        "-m cull_idle " in out
        and "--cull-every=2" in out
        and "--idle-by=work" in out
        and "--state-file=" in out
    )
    # Ctrl-C, or the check's end, stops every server of the demo's Hub: admin-user's too.
    assert single_user_servers() <= before, single_user_servers() - before
