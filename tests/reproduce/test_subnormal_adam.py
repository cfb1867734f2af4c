"""reproduce/subnormal_adam.py: stuck subnormal Adam moments, with and without flushing."""
from __future__ import annotations

import json

import pytest
import torch

from reproduce import subnormal_adam as S

needs_ftz = pytest.mark.skipif(not torch.set_flush_denormal(False), reason="CPU cannot flush subnormals")


@needs_ftz
def test_subnormals_stick_without_flushing_and_vanish_with_it():
    kept = S.time_adam_step(10_000, 0.5, flush=False, repeats=3)
    # 0.9 * 1e-44 rounds back to the same subnormal: the moments never decay to 0
    assert kept["subnormal_fraction_after"] == pytest.approx(0.5, abs=0.05)
    gone = S.time_adam_step(10_000, 0.5, flush=True, repeats=3)
    assert gone["subnormal_fraction_after"] == 0.0 and gone["flush_denormal"] is True
    assert kept["median_s"] > 0 and gone["median_s"] > 0


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="subnormal_fraction"):
        S.time_adam_step(10, 1.5, flush=False)
    with pytest.raises(ValueError, match="repeats"):
        S.time_adam_step(10, 0.5, flush=False, repeats=0)


def test_main_writes_json(tmp_path):
    out = tmp_path / "r.json"
    assert S.main(["--n", "1000", "--fractions", "0.2", "--repeats", "1", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["flush_denormal"] for r in rows] in ([False, True], [False, False])
