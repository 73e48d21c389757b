"""``python -m cull_idle``."""

import signal
import sys


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# Before anything slow is imported: a Hub stopping its services right after starting them
# (SIGINT, then SIGTERM) gets a quiet exit 0 here too.
signal.signal(signal.SIGINT, _interrupt)
signal.signal(signal.SIGTERM, _interrupt)

try:
    from ._cli import main
except KeyboardInterrupt:
    sys.exit(0)

if __name__ == "__main__":
    sys.exit(main())
