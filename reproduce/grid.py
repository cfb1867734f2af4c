"""One cell of the Table 1 grid: (method, benchmark, seed) -> result JSON.

A cell builds the benchmark (through :mod:`avalanche_sparse.benchmarks`),
asks the registry for the method's model, optimizer, plugins and strategy,
trains experience by experience with an ordinary Avalanche strategy, and
after every experience evaluates the whole test stream with Avalanche's
``EvaluationPlugin`` (accuracy, loss, forgetting, BWT, timing). The rows of
those evaluations form the accuracy matrix ``A[i][j]`` = accuracy on
experience ``j`` after training on experience ``i``.

After every experience the cell saves a checkpoint
(``OUT/checkpoints/<method>/<benchmark>/seed<k>.pt``, see
:mod:`avalanche_sparse.checkpoint`): a cell that is killed resumes from its
last finished experience and ends with the numbers of an uninterrupted run.
The checkpoint is deleted once the cell's result is written.

Determinism: every cell seeds Python, NumPy and torch from its seed
(Avalanche's ``RNGManager``) before building its model, and turns on
``torch.use_deterministic_algorithms``; data order, permutations and
initialisations then depend on the seed only, so on CPU the same seed and
protocol give bit-identical metrics (with the same number of torch threads).
On GPU, cuDNN/cuBLAS kernels are made deterministic where torch can
(``CUBLAS_WORKSPACE_CONFIG``, no cuDNN benchmark mode) and warn otherwise;
results across GPU models or driver versions are not bit-identical.
"""
from __future__ import annotations

import json
import math
import os
import re
import time
import traceback
from pathlib import Path
from typing import Any, Optional

import torch

from avalanche_sparse.io import OutputDirError, atomic_write_bytes, atomic_write_json

from .presets import BUILDER_KEYS, GRID_BENCHMARKS, benchmark_twin

__all__ = [
    "cell_path",
    "checkpoint_path",
    "cell_tb_dir",
    "load_cell",
    "load_cells",
    "benchmark_info",
    "method_hparams",
    "build_benchmark",
    "run_cell",
    "flush_denormal_on",
    "accuracy_matrix_png",
    "NonFiniteLossError",
]

_ACC_EXP = re.compile(r"^Top1_Acc_Exp/eval_phase/test_stream/Task\d+/Exp(\d+)$")
_BENCH_CACHE: dict = {}


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN/inf loss."""


def cell_path(out: Path, method: str, benchmark: str, seed: int) -> Path:
    """Result file of a cell."""
    return Path(out) / "cells" / method / benchmark / f"seed{seed}.json"


def checkpoint_path(out: Path, method: str, benchmark: str, seed: int) -> Path:
    """In-cell checkpoint: ``OUT/checkpoints/<method>/<benchmark>/seed<k>.pt`` (never committed)."""
    return Path(out) / "checkpoints" / method / benchmark / f"seed{seed}.pt"


def cell_tb_dir(out: Path, method: str, benchmark: str, seed: int) -> Path:
    """TensorBoard folder of a cell: ``OUT/tb/<method>/<benchmark>/seed<k>``."""
    return Path(out) / "tb" / method / benchmark / f"seed{seed}"


def load_cell(path: Path) -> Optional[dict]:
    """The cell's result, or None if absent or unreadable (then it is re-run)."""
    import json

    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def load_cells(out: Path) -> list[dict]:
    """Every readable cell result under ``out/cells``, in path order."""
    cells = (load_cell(p) for p in sorted((Path(out) / "cells").glob("*/*/seed*.json")))
    return [c for c in cells if c is not None]


def benchmark_info(benchmark: str, n_experiences: int, cifar10_source: Optional[str] = None,
                   label: Optional[str] = None):
    """The :class:`BenchmarkInfo` of grid benchmark ``benchmark``; a CIFAR-10
    label says "CIFAR-10 (JPEG copy)" when ``cifar10_source`` is ``"jpeg"``.
    ``label`` (a preset protocol's ``label``) replaces the benchmark's own."""
    from avalanche_sparse.benchmarks.scenarios import BenchmarkInfo

    spec = GRID_BENCHMARKS[benchmark]
    label = label or spec["label"]
    if cifar10_source == "jpeg":
        label = label.replace("CIFAR-10", "CIFAR-10 (JPEG copy)")
    return BenchmarkInfo(
        name=benchmark, input_shape=tuple(spec["input_shape"]), n_classes=spec["n_classes"],
        n_experiences=int(n_experiences), scenario=spec["scenario"], label=label,
    )


def method_hparams(method, benchmark: str, protocol: dict) -> dict:
    """A method's merged hparams on ``benchmark``: its twin's overrides apply
    when the method has none of its own."""
    from avalanche_sparse.strategies import resolve_hparams

    return resolve_hparams(method, benchmark_twin(benchmark, method.hparams_by_benchmark), protocol)


def build_benchmark(benchmark: str, protocol: dict, seed: int, root=None):
    """Build grid benchmark ``benchmark`` with ``protocol``'s builder keys.

    The last built benchmark is cached in-process (cells of the same
    benchmark and seed share it).

    :return: ``(avalanche_benchmark, BenchmarkInfo)``.
    """
    from avalanche_sparse.benchmarks import BENCHMARK_BUILDERS

    spec = GRID_BENCHMARKS[benchmark]
    kwargs = dict(spec["kwargs"])
    kwargs.update({k: protocol[k] for k in BUILDER_KEYS if k in protocol})
    key = (spec["builder"], tuple(sorted(kwargs.items())), seed, str(root))
    if key not in _BENCH_CACHE:
        _BENCH_CACHE.clear()
        bm = BENCHMARK_BUILDERS[spec["builder"]](seed=seed, root=root, **kwargs)
        _BENCH_CACHE[key] = bm
    bm = _BENCH_CACHE[key]
    return bm, benchmark_info(benchmark, len(bm.train_stream), getattr(bm, "cifar10_source", None),
                              label=protocol.get("label"))


def _stream_value(metrics: dict, prefix: str) -> Optional[float]:
    vals = [float(v) for k, v in metrics.items() if k.startswith(prefix) and isinstance(v, (int, float))]
    return sum(vals) / len(vals) if vals else None


def _loss_guard():
    from avalanche.core import SupervisedPlugin

    class _LossGuard(SupervisedPlugin):
        """Stops a cell at the first non-finite loss, naming the step."""

        def __init__(self):
            super().__init__()
            self.iteration = 0

        def after_backward(self, strategy, *args, **kwargs):
            self.iteration += 1
            if not torch.isfinite(strategy.loss).all():
                raise NonFiniteLossError(
                    f"non-finite loss {strategy.loss.item()} at experience "
                    f"{strategy.experience.current_experience}, epoch {strategy.clock.train_exp_epochs}, "
                    f"iteration {self.iteration}"
                )

    return _LossGuard()


def accuracy_matrix_png(matrix: list[list[Optional[float]]], title: str) -> bytes:
    """A PNG heat map of the accuracy matrix (rows: after training on exp i)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    arr = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    n = arr.shape[0]
    fig, ax = plt.subplots(figsize=(1.2 + 0.45 * n, 1.0 + 0.4 * n), dpi=80)
    im = ax.imshow(arr, vmin=0.0, vmax=1.0, cmap="viridis")
    if n <= 12:
        for i in range(n):
            for j in range(arr.shape[1]):
                if not np.isnan(arr[i, j]):
                    ax.text(j, i, f"{arr[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if arr[i, j] < 0.6 else "black")
    ax.set_xlabel("evaluated on experience")
    ax.set_ylabel("after training on")
    ax.set_title(title, fontsize=7)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def flush_denormal_on() -> bool:
    """Whether this thread's CPU now flushes subnormal floats to zero."""
    return float(torch.tensor([1e-39]).mul(1.0)[0]) == 0.0


def run_cell(method_name: str, benchmark: str, seed: int, protocol: dict, out: Path, *,
             root=None, threads: Optional[int] = None, progress: bool = True,
             position: int = 1, checkpoints: bool = True, device: str = "cpu",
             flush_denormal: bool = True, keep_freed_memory: bool = True) -> dict:
    """Train and evaluate one cell; write its result JSON atomically; return it.

    Failures are recorded, not raised: ``status`` is ``"ok"``, ``"failed"``
    (with ``error``, the message naming the step for a NaN loss) or
    ``"data not staged"`` (with the staging hint). With ``checkpoints`` the
    cell resumes from its checkpoint when there is one, saves one after every
    experience, and deletes it once the result is written.

    ``flush_denormal`` (default on) makes the CPU treat subnormal floats
    (non-zero, below 1.2e-38) as zero (``torch.set_flush_denormal``). Adam's
    moments of weights that stop getting gradient (non-winning dendritic
    segments, units outside a k-WTA) decay into that range and get stuck there
    (0.9 times the smallest subnormals rounds back to them); on x86 every
    operation on a subnormal is many times slower, so such cells slow down
    more with every task (``reproduce/subnormal_adam.py`` measures it). It is
    set for the thread that runs the cell (torch's intra-op threads started
    earlier may keep their mode), recorded in the result, and not part of the
    checkpoint key: it changes no value above 1.2e-38.

    ``keep_freed_memory`` (default on) asks glibc to keep freed blocks mapped
    (:func:`avalanche_sparse.memory.keep_freed_memory`), so a step that
    allocates the same large tensors every time reuses mapped pages instead of
    page-faulting fresh ones. It is process-wide and stays set after the cell
    (so the result records whether it is in effect, ``False`` where there is no
    glibc); it changes no value and is not part of the checkpoint key.

    :raises avalanche_sparse.io.OutputDirError: when ``out`` cannot be written
        (read-only, disk full): nothing half-written is left behind.
    """
    from avalanche_sparse.benchmarks.data import DatasetNotStagedError

    out = Path(out)
    base = {"method": method_name, "benchmark": benchmark, "seed": int(seed),
            "protocol": protocol}
    path = cell_path(out, method_name, benchmark, seed)
    t0 = time.time()
    was_flushing = flush_denormal_on()
    from avalanche_sparse import memory

    if keep_freed_memory:
        memory.keep_freed_memory()
    # what is in effect (process-wide: an earlier cell of this process may have set it)
    base["keep_freed_memory"] = memory.freed_memory_kept() is not None
    # False where the CPU cannot flush subnormals: recorded as it really ran
    base["flush_denormal"] = bool(torch.set_flush_denormal(bool(flush_denormal))) and bool(flush_denormal)
    try:
        result = _train_cell(method_name, benchmark, seed, protocol, out, root=root,
                             threads=threads, progress=progress, position=position,
                             checkpoints=checkpoints, device=device)
        result.update(base, status="ok", wall_s=round(time.time() - t0, 2))
    except DatasetNotStagedError as err:
        result = dict(base, status="data not staged", error=str(err))
    except (KeyboardInterrupt, SystemExit, OutputDirError):
        raise
    except Exception as err:  # the grid goes on; the table shows the failure
        result = dict(base, status="failed", error=f"{type(err).__name__}: {err}",
                      traceback=traceback.format_exc(limit=8), wall_s=round(time.time() - t0, 2))
    finally:
        torch.set_flush_denormal(was_flushing)  # the caller's mode again
    atomic_write_json(path, result)
    _remove_checkpoint(checkpoint_path(out, method_name, benchmark, seed))
    return result


def _remove_checkpoint(ck: Path) -> None:
    """Delete a finished cell's checkpoint and the folders it leaves empty."""
    try:
        ck.unlink()
    except FileNotFoundError:
        return
    for folder in (ck.parent, ck.parent.parent, ck.parent.parent.parent):
        try:
            folder.rmdir()
        except OSError:
            break


def _deterministic() -> None:
    """Deterministic kernels where torch has them (see the module docstring)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def _build(method_name, benchmark, seed, protocol, out, info, *, progress, position, device="cpu",
           cifar10_source=None):
    """Seed the RNGs, then build the cell's evaluator and strategy."""
    from avalanche.evaluation.metrics import (
        accuracy_metrics, bwt_metrics, forgetting_metrics, loss_metrics, timing_metrics,
    )
    from avalanche.logging import TensorboardLogger
    from avalanche.training.determinism.rng_manager import RNGManager
    from avalanche.training.plugins import EvaluationPlugin

    from avalanche_sparse.strategies import (
        EpochProgressPlugin, FastTensorLoaderPlugin, MethodContext, build_strategy, get_method,
    )

    method = get_method(method_name)
    RNGManager.set_random_seeds(int(seed))
    hp = method_hparams(method, benchmark, protocol)
    ctx = MethodContext(benchmark=info, hparams=hp, seed=int(seed), device=torch.device(device))
    tb_logger = TensorboardLogger(tb_log_dir=str(cell_tb_dir(out, method_name, benchmark, seed)))
    # name the data in TensorBoard too (e.g. "Split CIFAR-10 (JPEG copy) (class-IL)")
    tb_logger.writer.add_text("benchmark", f"{info.label}: {method_name}, seed {seed}", 0)
    if cifar10_source:
        from avalanche_sparse.benchmarks.data import cifar10_source_label

        tb_logger.writer.add_text("data_source", cifar10_source_label(cifar10_source), 0)
    evaluator = EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True),
        loss_metrics(experience=True, stream=True),
        forgetting_metrics(experience=True, stream=True),
        bwt_metrics(experience=True, stream=True),
        timing_metrics(epoch=True, experience=True),
        loggers=[tb_logger],
    )
    # the fast loader goes last: it batches whatever loader the strategy and
    # the method's plugins (e.g. replay) made; same minibatches, same order
    fast = FastTensorLoaderPlugin()
    plugins = [_loss_guard(), EpochProgressPlugin(desc=f"{method_name}/{benchmark}",
                                                  position=position + 1, disable=not progress),
               fast]
    strategy = build_strategy(method, ctx, evaluator=evaluator, extra_plugins=plugins)
    return strategy, tb_logger, hp


def _fast_loader_stats(strategy) -> Optional[dict]:
    """Swaps and fallbacks of the cell's :class:`FastTensorLoaderPlugin`."""
    from avalanche_sparse.strategies import FastTensorLoaderPlugin

    for p in strategy.plugins:
        if isinstance(p, FastTensorLoaderPlugin):
            return {"swaps": p.swaps, "fallbacks": p.fallbacks, "last_fallback": p.last_fallback}
    return None


def _optimizer_record(optimizer) -> dict:
    """Class and implementation switches (``fused``/``foreach``) of a cell's optimizer."""
    group = optimizer.param_groups[0] if getattr(optimizer, "param_groups", None) else {}
    return {"class": type(optimizer).__name__,
            **{k: group[k] for k in ("fused", "foreach") if k in group}}


def _checkpoint_key(method_name, benchmark, seed, protocol, hp, n, optimizer=None) -> str:
    """What a checkpoint must match to be resumed from."""
    key = {"method": method_name, "benchmark": benchmark, "seed": int(seed),
           "protocol": protocol, "hparams": hp, "n_experiences": n, "torch": torch.__version__}
    if optimizer is not None:
        key["optimizer"] = optimizer
    return json.dumps(key, sort_keys=True, default=str)


def _resume(strategy, tb_logger, saved, train_exps, test_stream, tb_dir):
    """Load a checkpoint into the fresh ``strategy``; hide the killed run's
    TensorBoard events after the checkpoint (``purge_step``)."""
    from avalanche_sparse.checkpoint import load_strategy_state
    from torch.utils.tensorboard import SummaryWriter

    load_strategy_state(strategy, saved["strategy"], train_exps=train_exps, eval_streams=[test_stream])
    tb_logger.writer.close()
    tb_logger.writer = SummaryWriter(str(tb_dir), purge_step=int(strategy.clock.train_iterations) + 1)


def _train_cell(method_name, benchmark, seed, protocol, out, *, root, threads, progress, position,
                checkpoints=True, device="cpu"):
    from tqdm.auto import tqdm

    from avalanche_sparse.checkpoint import (
        UnsupportedStateError, load_checkpoint, save_checkpoint, strategy_state,
    )

    if threads:
        torch.set_num_threads(int(threads))
    _deterministic()
    bm, info = build_benchmark(benchmark, protocol, seed, root=root)
    train_exps = list(bm.train_stream)
    n = len(train_exps)
    strategy, tb_logger, hp = _build(method_name, benchmark, seed, protocol, out, info,
                                     cifar10_source=getattr(bm, "cifar10_source", None),
                                     progress=progress, position=position, device=device)
    optim_record = _optimizer_record(strategy.optimizer)
    key = _checkpoint_key(method_name, benchmark, seed, protocol, hp, n, optim_record)
    ck_path = checkpoint_path(out, method_name, benchmark, seed)
    matrix: list[list[Optional[float]]] = []
    last: dict = {}
    train_time = 0.0
    start = 0
    save_ck, checkpoint_note = bool(checkpoints), "on" if checkpoints else "off"
    saved = load_checkpoint(ck_path) if checkpoints else None
    if saved is not None and saved.get("key") == key and 0 < int(saved.get("done", 0)) <= n:
        k = int(saved["done"])
        try:
            _resume(strategy, tb_logger, saved, train_exps[:k], bm.test_stream,
                    cell_tb_dir(out, method_name, benchmark, seed))
            matrix, last, train_time, start = saved["matrix"], saved["last"], saved["train_time_s"], k
        except (UnsupportedStateError, KeyError, ValueError, RuntimeError) as err:
            # e.g. the method's code changed shape since: start over with a clean strategy
            checkpoint_note = f"resume refused ({type(err).__name__}: {err}); cell re-run from its start"
            tb_logger.writer.close()
            strategy, tb_logger, hp = _build(method_name, benchmark, seed, protocol, out, info,
                                             cifar10_source=getattr(bm, "cifar10_source", None),
                                             progress=progress, position=position, device=device)
    bar = tqdm(total=n, initial=start, desc=f"{method_name}/{benchmark}/seed{seed} exps",
               position=position, leave=False, disable=not progress)
    for i in range(start, n):
        t = time.time()
        strategy.train(train_exps[i])
        train_time += time.time() - t
        last = {k: float(v) for k, v in strategy.eval(bm.test_stream).items()
                if isinstance(v, (int, float))}
        row: list[Optional[float]] = [None] * n
        for name, value in last.items():
            m = _ACC_EXP.match(name)
            if m:
                row[int(m.group(1))] = float(value)
        matrix.append(row)
        bar.update(1)
        if save_ck:
            try:
                state = strategy_state(strategy)
            except UnsupportedStateError as err:  # this method's state is not plain data
                save_ck, checkpoint_note = False, f"off: {err}"
            else:
                save_checkpoint(ck_path, {"key": key, "done": i + 1, "strategy": state, "matrix": matrix,
                                          "last": last, "train_time_s": train_time})
    bar.close()
    final = matrix[-1]
    done = [v for v in final if v is not None]
    avg_acc = sum(done) / len(done) if done else math.nan
    result = {
        "label": info.label,
        "avg_acc": avg_acc,
        "stream_acc": _stream_value(last, "Top1_Acc_Stream/eval_phase/test_stream"),
        "forgetting": _stream_value(last, "StreamForgetting/eval_phase/test_stream"),
        "bwt": _stream_value(last, "StreamBWT/eval_phase/test_stream"),
        "acc_matrix": matrix,
        "train_time_s": round(train_time, 2),
        "hparams": {k: v for k, v in hp.items()},
        "optimizer": optim_record,
        "n_experiences": n,
        "cifar10_source": getattr(bm, "cifar10_source", None),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "checkpoints": checkpoint_note,
        "fast_loader": _fast_loader_stats(strategy),
    }
    if start:
        result["resumed_after_experience"] = start
    png = accuracy_matrix_png(matrix, f"{method_name} on {info.label}, seed {seed}")
    atomic_write_bytes(Path(out) / "plots" / f"{method_name}__{benchmark}__seed{seed}.png", png)
    _log_matrix_image(tb_logger, png)
    tb_logger.writer.flush()
    tb_logger.writer.close()
    return result


def _log_matrix_image(tb_logger: Any, png: bytes) -> None:
    import io

    import numpy as np
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    tb_logger.writer.add_image("accuracy_matrix", img, global_step=0, dataformats="HWC")
