"""Run the Table 1 grid in a subprocess on a preset given as JSON (for fault tests).

``python tests/reproduce/grid_runner.py PRESET_JSON -- <table1.py arguments>``
installs the preset as ``tiny``; importing it registers ``naive_blocking``: plain
``naive`` plus :class:`BlockingPlugin`, which, while the file named by
``$GRID_BLOCK_FILE`` exists, writes its process id to
``$GRID_BLOCK_FILE.reached`` at the start of experience 1 (after experience
0's checkpoint) and then sleeps, so that a test can ``kill -9`` it mid-cell.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from avalanche.core import SupervisedPlugin  # noqa: E402

import avalanche_sparse.strategies as S  # noqa: E402

__all__ = ["BlockingPlugin", "install"]


class BlockingPlugin(SupervisedPlugin):
    """Sleeps at the start of experience 1 while ``$GRID_BLOCK_FILE`` exists."""

    def before_training_exp(self, strategy, *args, **kwargs):
        block = os.environ.get("GRID_BLOCK_FILE")
        if block and os.path.exists(block) and strategy.experience.current_experience == 1:
            Path(block + ".reached").write_text(str(os.getpid()))
            while os.path.exists(block):
                time.sleep(0.2)


def _blocking_plugins(ctx) -> list:
    return [BlockingPlugin()]


# at import time, so that spawned worker processes (which import this module) know it too
S.register(S.Method(name="naive_blocking", description="naive that can be paused",
                    model=S.default_model, optimizer=S.default_optimizer,
                    plugins=_blocking_plugins), replace=True)


def install(preset: dict) -> None:
    """Install ``preset`` as ``tiny``."""
    from reproduce import presets

    presets.PRESETS["tiny"] = preset


if __name__ == "__main__":
    install(json.loads(sys.argv[1]))
    import reproduce.table1 as T

    sys.exit(T.main(sys.argv[3:]))
