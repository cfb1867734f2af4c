"""Reproduce Table 1: every registered method on every benchmark, several seeds.

Usage::

    python reproduce/table1.py --preset quick            # minutes on 2 CPU cores
    python reproduce/table1.py --preset full --seeds 0 1 2 --out reproduce/results/full
    python reproduce/table1.py --preset full --backend ray --address auto --cpus-per-cell 2
    python reproduce/table1.py --list                     # methods, benchmarks, presets

Each cell (method, benchmark, seed) trains with an ordinary Avalanche strategy
and writes ``OUT/cells/<method>/<benchmark>/seed<k>.json`` atomically;
re-running skips finished cells, and a cell that was killed resumes from its
last finished experience (``OUT/checkpoints/``). TensorBoard: ``tensorboard
--logdir OUT/tb``. The table goes to ``OUT/table1.md``, ``OUT/table1.csv``
and ``OUT/table1.png``; accuracy-matrix images to ``OUT/plots/``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `reproduce` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reproduce import backends  # noqa: E402
from reproduce.grid import cell_path, load_cell, load_cells  # noqa: E402
from reproduce.presets import GRID_BENCHMARKS, PRESETS, get_preset, runs_on  # noqa: E402
from reproduce.report import aggregate, render_csv, render_markdown, summary_png  # noqa: E402

__all__ = ["main", "parse_args", "plan_cells", "check_out_dir", "protocol_fingerprint",
           "PresetMismatchError"]


_ADDRESS = re.compile(r"^(ray://)?[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")


class PresetMismatchError(RuntimeError):
    """The output folder holds results of a different preset."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="table1.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="quick", help=f"one of {sorted(PRESETS)} (default quick)")
    p.add_argument("--methods", nargs="+", help="registered method names (default: all)")
    p.add_argument("--benchmarks", nargs="+", help=f"grid benchmarks (default: all of the preset): {list(GRID_BENCHMARKS)}")
    p.add_argument("--seeds", nargs="+", type=int, help="seeds (default: the preset's)")
    p.add_argument("--out", help="output folder (default: runs/table1-<preset>)")
    p.add_argument("--root", help="data root (default: $AVALANCHE_SPARSE_DATA or ~/.avalanche/data)")
    p.add_argument("--workers", type=int, default=1,
                   help="local backend: cells run in parallel worker processes (default 1: in this process)")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local processes (default) or one Ray task per cell (needs the [ray] extra)")
    p.add_argument("--address", help="ray backend: 'auto' or HOST:PORT of a running cluster "
                                     "(default: start a local Ray on this machine)")
    p.add_argument("--cpus-per-cell", type=float, default=1.0,
                   help="ray backend: CPUs reserved per cell, also its torch threads (default 1)")
    p.add_argument("--gpus-per-cell", type=float, default=0.0,
                   help="ray backend: GPUs reserved per cell, a fraction shares one (default 0)")
    p.add_argument("--device", choices=("cpu", "cuda"),
                   help="torch device of the cells (default: cuda when --gpus-per-cell > 0, else cpu)")
    p.add_argument("--no-checkpoints", action="store_true",
                   help="do not checkpoint cells after every experience")
    p.add_argument("--no-flush-denormal", action="store_true",
                   help="keep subnormal floats (default: flush them to zero, which keeps long Adam "
                        "runs from slowing down; see grid.run_cell)")
    p.add_argument("--no-keep-freed-memory", action="store_true",
                   help="leave glibc's malloc thresholds alone (default: keep freed blocks mapped, "
                        "which saves page faults on large per-step tensors; see grid.run_cell)")
    p.add_argument("--force", action="store_true", help="reuse an output folder whose results were run with another protocol")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--list", action="store_true", help="list methods, benchmarks and presets, then exit")
    return p.parse_args(argv)


def _validate(args, preset: dict, methods_all: list[str]) -> tuple[list[str], list[str], list[int]]:
    methods = args.methods or preset.get("methods") or methods_all
    bad = [m for m in methods if m not in methods_all]
    if bad:
        raise SystemExit(f"error: unknown method(s) {bad}; valid methods: {', '.join(methods_all)}")
    benches = args.benchmarks or list(preset["benchmarks"])
    bad = [b for b in benches if b not in preset["benchmarks"]]
    if bad:
        raise SystemExit(f"error: unknown benchmark(s) {bad}; valid benchmarks: {', '.join(preset['benchmarks'])}")
    seeds = args.seeds if args.seeds is not None else preset["seeds"]
    if not seeds or any(s < 0 for s in seeds):
        raise SystemExit(f"error: --seeds must be non-negative integers, got {seeds}")
    if args.workers < 1:
        raise SystemExit(f"error: --workers must be >= 1, got {args.workers}")
    if args.backend != "ray":
        for flag, value, default in (("--address", args.address, None),
                                     ("--cpus-per-cell", args.cpus_per_cell, 1.0),
                                     ("--gpus-per-cell", args.gpus_per_cell, 0.0)):
            if value != default:
                raise SystemExit(f"error: {flag} applies to --backend ray only")
    elif args.workers != 1:
        raise SystemExit("error: --workers applies to --backend local only (Ray schedules by "
                         "--cpus-per-cell/--gpus-per-cell)")
    if not (args.cpus_per_cell > 0 and math.isfinite(args.cpus_per_cell)):
        raise SystemExit(f"error: --cpus-per-cell must be a number > 0, got {args.cpus_per_cell}")
    if not (args.gpus_per_cell >= 0 and math.isfinite(args.gpus_per_cell)):
        raise SystemExit(f"error: --gpus-per-cell must be a number >= 0, got {args.gpus_per_cell}")
    if args.address is not None and args.address != "auto" and not _ADDRESS.match(args.address):
        raise SystemExit(f"error: --address must be 'auto' or HOST:PORT, got {args.address!r}")
    if args.device == "cuda" and args.backend == "local":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("error: --device cuda but torch sees no CUDA device here")
    return methods, benches, list(seeds)


def protocol_fingerprint(protocol: dict) -> str:
    """Short hash of one benchmark's protocol (JSON, keys sorted)."""
    import hashlib

    body = json.dumps(protocol, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def _folder_protocols(out: Path) -> dict[str, set[str]]:
    """benchmark -> fingerprints of the protocols its cell files in ``out`` were run with."""
    found: dict[str, set[str]] = {}
    for p in (out / "cells").glob("*/*/seed*.json"):
        cell = load_cell(p)
        if cell is None or not isinstance(cell.get("protocol"), dict):
            continue
        found.setdefault(p.parent.name, set()).add(protocol_fingerprint(cell["protocol"]))
    return found


def check_out_dir(out: Path, preset_name: str, preset: dict, force: bool) -> dict:
    """Refuse ``out`` when a benchmark with results there now has another protocol.

    ``out/run.json`` records, per benchmark, the fingerprint of the protocol
    its cells were run with (:func:`protocol_fingerprint`). A benchmark that
    has cell files in ``out`` must have the same protocol in ``preset``,
    else :class:`PresetMismatchError` (unless ``force``); benchmarks new to
    the folder (a benchmark added to the preset) are simply added to the
    record, so extending a preset never invalidates finished results.

    The fingerprints come from the record and from the ``protocol`` stored in
    every cell file, so the older ``run.json`` format (``preset`` + one
    fingerprint over the whole preset) is read too.

    :return: the record written to ``run.json``.
    """
    from avalanche_sparse.io import atomic_write_json

    marker = out / "run.json"
    theirs: dict = {}
    if marker.exists():
        try:
            theirs = json.loads(marker.read_text())
        except ValueError:
            theirs = {}
        if not isinstance(theirs, dict):
            theirs = {}
    recorded = theirs.get("benchmarks") if isinstance(theirs.get("benchmarks"), dict) else {}
    seen = _folder_protocols(out)
    for bench, fp in recorded.items():
        if bench in seen:  # recorded but with no result left: nothing to protect
            seen[bench].add(fp)
    mine = {b: protocol_fingerprint(p) for b, p in preset["benchmarks"].items()}
    clashes = sorted(b for b, fps in seen.items() if b in mine and fps != {mine[b]})
    if clashes and not force:
        was = theirs.get("preset", "?")
        raise PresetMismatchError(
            f"{out} holds results of preset {was!r} whose protocol for "
            f"{', '.join(clashes)} differs from preset {preset_name!r}'s "
            f"({'; '.join(f'{b}: {sorted(seen[b])} != {mine[b]}' for b in clashes)}); "
            f"use another --out or pass --force"
        )
    record = {"format": 2, "preset": preset_name,
              "benchmarks": {**{b: next(iter(fps)) for b, fps in seen.items() if len(fps) == 1},
                             **{b: fp for b, fp in recorded.items() if b not in seen},
                             **mine}}
    atomic_write_json(marker, record)
    return record


def plan_cells(methods, benches, seeds, registry) -> list[tuple[str, str, int]]:
    """All (method, benchmark, seed) cells, skipping benchmarks a method excludes.

    A method whose ``benchmarks`` list names a benchmark's twin (e.g.
    ``split_mnist_class`` for ``split_fmnist_class``) runs on it too.
    """
    cells = []
    for b in benches:
        for m in methods:
            if not runs_on(registry[m].benchmarks, b):
                continue
            for s in seeds:
                cells.append((m, b, s))
    return cells


def _write_table(out: Path, preset_name: str, argv) -> str:
    from avalanche_sparse.io import atomic_write_bytes, atomic_write_text

    rows = aggregate(load_cells(out))
    command = "python reproduce/table1.py " + " ".join(shlex.quote(a) for a in argv)
    md = render_markdown(rows, preset=preset_name, command=command.strip())
    atomic_write_text(out / "table1.md", md)
    atomic_write_text(out / "table1.csv", render_csv(rows))
    png = summary_png(rows, title=f"Table 1 ({preset_name} preset)")
    atomic_write_bytes(out / "table1.png", png)
    _log_summary(out / "tb" / "summary", png, md)
    return md


def _log_summary(tb_dir: Path, png: bytes, md: str) -> None:
    """The summary image and table as the ``summary`` run of ``OUT/tb`` (replaced each time)."""
    import io

    import numpy as np
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter

    for old in tb_dir.glob("events.out.tfevents.*"):
        old.unlink()
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    with SummaryWriter(str(tb_dir)) as w:
        w.add_image("table1", img, global_step=0, dataformats="HWC")
        w.add_text("table1", md, global_step=0)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    import avalanche_sparse.strategies as strategies

    if args.list:
        print("methods:")
        for name in strategies.available_methods():
            print(f"  {name:16s} {strategies.get_method(name).description}")
        print("benchmarks:", ", ".join(GRID_BENCHMARKS))
        print("presets:", ", ".join(sorted(PRESETS)))
        return 0
    try:
        preset = get_preset(args.preset)
    except KeyError as err:
        raise SystemExit(f"error: {err.args[0]}")
    methods, benches, seeds = _validate(args, preset, strategies.available_methods())
    out = Path(args.out or f"runs/table1-{args.preset}")
    from avalanche_sparse.io import OutputDirError

    try:
        check_out_dir(out, args.preset, preset, args.force)
    except PresetMismatchError as err:
        raise SystemExit(f"error: {err}")
    except OutputDirError as err:
        raise SystemExit(f"error: output folder not writable: {err}")
    cells = plan_cells(methods, benches, seeds, strategies.REGISTRY)
    todo = [c for c in cells if (load_cell(cell_path(out, *c)) or {}).get("status") != "ok"]
    print(f"{len(cells)} cells, {len(cells) - len(todo)} already done, {len(todo)} to run -> {out}",
          flush=True)
    from tqdm.auto import tqdm

    progress = not args.no_progress
    bar = tqdm(total=len(todo), desc="cells", position=0, disable=not progress)
    statuses = []

    def on_done(cell, result):
        statuses.append(result.get("status"))
        bar.set_postfix_str(f"{cell.method}/{cell.benchmark}/seed{cell.seed}: {result.get('status')}")
        bar.update(1)

    device = args.device or ("cuda" if args.gpus_per_cell > 0 else "cpu")
    work = [backends.Cell(m, b, s, preset["benchmarks"][b]) for m, b, s in todo]
    kw = dict(root=args.root, checkpoints=not args.no_checkpoints, device=device,
              flush_denormal=not args.no_flush_denormal,
              keep_freed_memory=not args.no_keep_freed_memory)
    try:
        if args.backend == "ray":
            backends.run_ray(work, out, on_done, address=args.address, cpus_per_cell=args.cpus_per_cell,
                             gpus_per_cell=args.gpus_per_cell, progress=False, **kw)
        elif args.workers == 1:
            backends.run_serial(work, out, on_done, progress=progress, **kw)
        else:
            threads = max(1, (os.cpu_count() or 1) // args.workers)
            backends.run_local_pool(work, out, on_done, workers=args.workers, threads=threads,
                                    progress=False, **kw)
    except OutputDirError as err:
        bar.close()
        raise SystemExit(f"error: output folder not writable: {err}; finished cells are kept, "
                         f"re-run once it is writable")
    bar.close()
    md = _write_table(out, args.preset, argv)
    print(md)
    print(f"table: {out / 'table1.md'}  csv: {out / 'table1.csv'}  tensorboard --logdir {out / 'tb'}")
    if "data not staged" in statuses:
        print("some cells were skipped: data not staged (see the table's Problems section for the command)")
    return 1 if "failed" in statuses else 0


if __name__ == "__main__":
    sys.exit(main())
