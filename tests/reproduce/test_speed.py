"""reproduce/speed.py: interleaved rounds, medians, ratios, bad input."""
from __future__ import annotations

import json

import pytest

from reproduce import speed


def test_speed_writes_interleaved_figures(data_root, tmp_path):
    out = tmp_path / "speed.json"
    assert speed.main(["--root", str(data_root), "--skip-stock", "--repeats", "2",
                       "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res["samples_s"]) == {"bare", "ours", "ours_plain"}
    assert all(len(v) == 2 and min(v) > 0 for v in res["samples_s"].values())
    for k in ("bare", "ours", "ours_plain"):
        assert res[f"{k}_epoch_s"] == pytest.approx(sum(res["samples_s"][k]) / 2, rel=1e-3)
    pairs = [a / b for a, b in zip(res["samples_s"]["ours"], res["samples_s"]["bare"])]
    assert res["ours_vs_bare"] == pytest.approx(sum(pairs) / 2, rel=1e-3)
    assert set(res["data_only_samples_s"]) == {"bare", "ours", "ours_plain"}
    assert all(res[f"data_only_{k}_s"] > 0 for k in ("bare", "ours", "ours_plain"))
    assert res["command"].startswith("python reproduce/speed.py --root")


@pytest.mark.parametrize("args,match", [(["--repeats", "0"], "--repeats"),
                                        (["--epochs", "0"], "--epochs")])
def test_speed_bad_arguments(args, match):
    with pytest.raises(SystemExit, match=match):
        speed.main(args)
