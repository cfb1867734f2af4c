"""Where the cells of the Table 1 grid run: here, in local processes, or on Ray.

Every backend calls :func:`reproduce.grid.run_cell` once per cell, which
writes the cell's result JSON (and checkpoints, plots, TensorBoard events)
under the output folder, so the result files and the table are the same
whichever backend ran them.

* ``local`` (default, no extra dependency): ``workers == 1`` runs the cells
  one after another in this process; ``workers > 1`` keeps that many
  ``spawn``-ed worker processes, each running one cell at a time. A worker
  that dies (``kill -9``, out of memory) costs only its cell: the cell is
  recorded as failed with the reason, its checkpoint is kept, a fresh worker
  takes the next cell, and re-running the command resumes the cell.
* ``ray``: one Ray task per cell with ``num_cpus=cpus_per_cell`` and
  ``num_gpus=gpus_per_cell``; ``address=None`` starts a private local Ray,
  ``"auto"`` or ``"HOST:PORT"`` joins an existing cluster. Ray retries a task
  whose worker died (``max_retries``); the retry resumes from the cell's
  checkpoint. On a cluster, every node needs this package installed and the
  data staged at ``root``, and the output folder must be on a filesystem all
  nodes share (checkpoints, TensorBoard); the driver also writes each
  returned cell JSON itself, so the table is complete even without one.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable, NamedTuple, Optional

__all__ = ["Cell", "WorkerDiedError", "run_serial", "run_local_pool", "run_ray", "died_result",
           "exit_when_orphaned"]

OnDone = Callable[["Cell", dict], None]


class Cell(NamedTuple):
    """One cell of the grid and the protocol of its benchmark."""

    method: str
    benchmark: str
    seed: int
    protocol: dict


class WorkerDiedError(RuntimeError):
    """A worker process ended without reporting its cell's result."""


def died_result(cell: Cell, out: Path, reason: str) -> dict:
    """Record a cell whose worker died, unless it had finished (then keep that).

    The cell's checkpoint is kept, so a re-run resumes it.
    """
    from avalanche_sparse.io import atomic_write_json

    from .grid import cell_path, load_cell

    path = cell_path(out, cell.method, cell.benchmark, cell.seed)
    done = load_cell(path)
    if done is not None and done.get("status") == "ok":
        return done
    result = {"method": cell.method, "benchmark": cell.benchmark, "seed": int(cell.seed),
              "protocol": cell.protocol, "status": "failed",
              "error": f"WorkerDiedError: {reason}; its checkpoint is kept: re-run to resume the cell"}
    atomic_write_json(path, result)
    return result


def run_serial(cells: list[Cell], out: Path, on_done: OnDone, **cell_kwargs) -> None:
    """Run ``cells`` one after another in this process."""
    from . import grid

    for c in cells:
        on_done(c, grid.run_cell(c.method, c.benchmark, c.seed, c.protocol, out, **cell_kwargs))


def exit_when_orphaned(parent_pid: int, poll_s: float = 2.0) -> threading.Thread:
    """End this process (``os._exit(1)``) once its parent ``parent_pid`` is
    gone: at once if it already is, else from a daemon thread that polls
    ``os.getppid()`` (it changes when the parent dies and the process is
    re-parented).

    A pool worker is busy inside a cell for hours; without this, killing
    ``table1.py`` (SIGTERM, SIGKILL) leaves its workers training on as orphans
    that compete for the cores and write the same cell as a re-run. The
    parent passes its own pid, so a parent that dies while the worker is
    still starting is noticed too. The worker's last per-experience checkpoint
    is kept (written atomically), so a re-run resumes.
    """
    if isinstance(parent_pid, bool) or not isinstance(parent_pid, int) or parent_pid < 1:
        raise ValueError(f"parent_pid must be a process id (int >= 1), got {parent_pid!r}")
    if not poll_s > 0:
        raise ValueError(f"poll_s must be > 0, got {poll_s!r}")
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch():
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent_pid:
                os._exit(1)

    t = threading.Thread(target=watch, name="exit-when-orphaned", daemon=True)
    t.start()
    return t


def _worker_main(conn, cell_kwargs: dict, parent_pid: int) -> None:
    """Body of a local worker process: run the cells it is sent."""
    exit_when_orphaned(parent_pid)
    from avalanche_sparse.io import OutputDirError

    from . import grid

    while True:
        msg = conn.recv()
        if msg is None:
            return
        c, out = msg
        try:
            result = grid.run_cell(c.method, c.benchmark, c.seed, c.protocol, out, **cell_kwargs)
            conn.send(("done", {"status": result["status"], "error": result.get("error")}))
        except OutputDirError as err:
            conn.send(("output", str(err)))
            return


def run_local_pool(cells: list[Cell], out: Path, on_done: OnDone, *, workers: int,
                   **cell_kwargs) -> None:
    """Run ``cells`` on ``workers`` spawned processes; survive dying workers.

    :raises avalanche_sparse.io.OutputDirError: when a worker cannot write the
        output folder (the other workers are stopped first).
    """
    import multiprocessing as mp
    from multiprocessing.connection import wait

    from avalanche_sparse.io import OutputDirError

    from .grid import cell_path, load_cell

    ctx = mp.get_context("spawn")
    todo = list(cells)
    busy: dict = {}  # process -> (conn, cell or None)
    error: Optional[str] = None

    def start():
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker_main, args=(child, cell_kwargs, os.getpid()), daemon=True)
        proc.start()
        child.close()
        busy[proc] = [parent, None]
        return proc

    def feed(proc):
        conn = busy[proc][0]
        if todo and error is None:
            busy[proc][1] = todo.pop(0)
            try:
                conn.send((busy[proc][1], out))
            except OSError:  # already dead: its sentinel reports it next
                pass
        else:
            busy[proc][1] = None

    try:
        for _ in range(min(workers, len(todo))):
            feed(start())
        while any(cell is not None for _, cell in busy.values()):
            conns = {id(v[0]): p for p, v in busy.items() if v[1] is not None}
            sentinels = {p.sentinel: p for p in busy if busy[p][1] is not None}
            ready = wait([busy[p][0] for p in conns.values()] + list(sentinels))
            for r in ready:
                proc = sentinels.get(r) or conns.get(id(r))
                if proc is None or proc not in busy or busy[proc][1] is None:
                    continue
                conn, cell = busy[proc]
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):  # the worker died mid-cell
                    proc.join(timeout=5)
                    code = proc.exitcode
                    how = (f"killed by signal {signal.Signals(-code).name}" if code is not None and code < 0
                           else f"exit code {code}")
                    del busy[proc]
                    on_done(cell, died_result(cell, out, f"the worker process running the cell died ({how})"))
                    if todo and error is None:
                        feed(start())
                    continue
                if kind == "output":
                    error = payload
                    busy[proc][1] = None
                    continue
                on_done(cell, load_cell(cell_path(out, cell.method, cell.benchmark, cell.seed))
                        or {"status": payload["status"], "error": payload["error"]})
                feed(proc)
    finally:
        for proc, (conn, _) in list(busy.items()):
            try:
                conn.send(None)
            except OSError:
                pass
        for proc in list(busy):
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
    if error is not None:
        raise OutputDirError(error)


def _ray_cell(cell: Cell, out: str, cell_kwargs: dict) -> dict:
    """Ray task body (module level, so Ray imports it by name)."""
    from . import grid

    return grid.run_cell(cell.method, cell.benchmark, cell.seed, cell.protocol, Path(out), **cell_kwargs)


def run_ray(cells: list[Cell], out: Path, on_done: OnDone, *, address: Optional[str] = None,
            cpus_per_cell: float = 1.0, gpus_per_cell: float = 0.0, max_retries: int = 2,
            num_cpus: Optional[int] = None, **cell_kwargs) -> None:
    """Run every cell as one Ray task.

    :param address: ``None`` starts a local Ray (``num_cpus`` CPUs, loopback
        only); ``"auto"`` or ``"HOST:PORT"`` connects to a running cluster.
    :param cpus_per_cell: ``num_cpus`` of each task (also its torch threads).
    :param gpus_per_cell: ``num_gpus`` of each task (a fraction shares a GPU).
    :param max_retries: times Ray re-runs a cell whose worker died; the
        retry resumes from the checkpoint.
    """
    try:
        import ray
    except ImportError as err:
        raise SystemExit("error: --backend ray needs Ray: pip install -e '.[ray]'") from err
    from avalanche_sparse.io import OutputDirError, atomic_write_json

    from .grid import cell_path

    repo = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH", "")) if p)
    runtime_env = {"env_vars": {"PYTHONPATH": path}}
    started = False
    if not ray.is_initialized():
        if address is None:
            ray.init(num_cpus=num_cpus, include_dashboard=False, runtime_env=runtime_env,
                     logging_level="WARNING", log_to_driver=False)
        else:
            ray.init(address=address, runtime_env=runtime_env, logging_level="WARNING")
        started = True
    cell_kwargs = dict(cell_kwargs, threads=max(1, int(cpus_per_cell)))
    task = ray.remote(num_cpus=cpus_per_cell, num_gpus=gpus_per_cell, max_retries=max_retries)(_ray_cell)
    try:
        pending = {task.remote(c, str(out), cell_kwargs): c for c in cells}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                cell = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as err:
                    cause = err.as_instanceof_cause()
                    if isinstance(cause, OutputDirError):
                        raise OutputDirError(str(cause)) from None
                    result = died_result(cell, out, f"the Ray task failed: {str(err).splitlines()[0]}")
                except ray.exceptions.RayError as err:  # worker or node lost after the retries
                    result = died_result(cell, out, f"the Ray worker running the cell died "
                                                    f"({type(err).__name__})")
                else:  # written by the worker; the driver writes it too (no shared filesystem needed)
                    atomic_write_json(cell_path(out, cell.method, cell.benchmark, cell.seed), result)
                on_done(cell, result)
    finally:
        if started:
            ray.shutdown()
