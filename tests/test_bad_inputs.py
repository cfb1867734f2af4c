"""A catalogue of bad inputs: every public constructor and CLI flag, fed invalid values.

Each entry names a target, the invalid arguments, and a regular expression
the error message must match -- it must name the argument (and, where there
is one, the allowed range or the valid names). Entries are plain data, so
anyone adding a class adds rows to :data:`CATALOGUE` (or a module of their
own that extends it); a target whose module is not importable in this
checkout is skipped, not failed.

``python tests/test_bad_inputs.py --update-readme`` runs the catalogue and
writes its count into the README between ``<!-- bad-inputs -->`` markers;
``test_readme_reports_the_catalogue_count`` keeps that number honest.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

__all__ = ["Call", "Cli", "CATALOGUE", "run_case", "count_tried", "count_available"]


@dataclass(frozen=True)
class Call:
    """Calling ``target`` (``"module:qualname"``) with ``args``/``kwargs``
    must raise ``raises`` whose message matches ``match``.

    ``prepare`` (optional) maps the call's arguments before the call, e.g. to
    build a model whose parameters an optimizer gets.
    """

    id: str
    target: str
    kwargs: dict = field(default_factory=dict)
    args: tuple = ()
    raises: Union[type, tuple] = (ValueError, TypeError)
    match: str = ""
    prepare: Optional[Callable[[tuple, dict], tuple]] = None


@dataclass(frozen=True)
class Cli:
    """``main(argv)`` of ``target`` must exit with an error matching ``match``
    (the ``SystemExit`` message, or argparse's usage error on stderr)."""

    id: str
    target: str
    argv: tuple
    match: str


def _params(args, kwargs):
    import torch

    return (torch.nn.Linear(3, 2).parameters(), *args), kwargs


def _xy(n_classes=4, n=8, shape=(1, 2, 2)):
    import torch

    y = torch.arange(n) % n_classes
    return torch.zeros(n, *shape), y


def _split(args, kwargs):
    x, y = _xy()
    return (x, y, x, y, *args), kwargs


_KW = "avalanche_sparse.layers:KWinners"
_KW2 = "avalanche_sparse.layers:KWinners2d"
_SW = "avalanche_sparse.layers:SparseWeights"
_SW2 = "avalanche_sparse.layers:SparseWeights2d"
_CSGD = "avalanche_sparse.optim:ComplexSynapseSGD"
_CADAM = "avalanche_sparse.optim:ComplexSynapseAdam"
_T1 = "reproduce.table1:main"
_DATA = "avalanche_sparse.benchmarks.data:main"


def _lin():
    import torch

    return torch.nn.Linear(4, 3)


def _conv():
    import torch

    return torch.nn.Conv2d(2, 3, 3)


def _wrap(make):
    return lambda args, kwargs: ((make(), *args), kwargs)


CATALOGUE: list[Union[Call, Cli]] = [
    # ---- models
    Call("MLP input_size 0", "avalanche_sparse.models:MLP", {"input_size": 0}, match="input_size"),
    Call("MLP hidden_sizes empty", "avalanche_sparse.models:MLP", {"hidden_sizes": []}, match="hidden_sizes"),
    Call("MLP hidden_sizes float", "avalanche_sparse.models:MLP", {"hidden_sizes": [2.5]}, match="hidden_sizes"),
    Call("MLP hidden_sizes negative", "avalanche_sparse.models:MLP", {"hidden_sizes": [-3]}, match="hidden_sizes"),
    Call("MLP dropout 1", "avalanche_sparse.models:MLP", {"dropout": 1.0}, match=r"dropout.*\[0, 1\)"),
    Call("MLP n_classes 0", "avalanche_sparse.models:MLP", {"n_classes": 0}, match="n_classes"),
    Call("MultiHeadMLP dropout -0.1", "avalanche_sparse.models:MultiHeadMLP", {"dropout": -0.1}, match="dropout"),
    Call("MultiHeadMLP hidden_sizes 0", "avalanche_sparse.models:MultiHeadMLP", {"hidden_sizes": [0]},
         match="hidden_sizes"),
    Call("SmallCNN channels empty", "avalanche_sparse.models:SmallCNN", {"channels": ()}, match="channels"),
    Call("SmallCNN hidden_size 0", "avalanche_sparse.models:SmallCNN", {"hidden_size": 0}, match="hidden_size"),
    Call("SmallCNN in_channels 0", "avalanche_sparse.models:SmallCNN", {"in_channels": 0}, match="in_channels"),
    Call("MultiHeadSmallCNN dropout 2", "avalanche_sparse.models:MultiHeadSmallCNN", {"dropout": 2.0},
         match="dropout"),
    Call("SmallCNN image_size too small", "avalanche_sparse.models:SmallCNN", {"image_size": 2},
         match=r"image_size must be an int >= 4"),
    # ---- layers
    Call("KWinners percent_on 0", _KW, {"n": 10, "percent_on": 0.0}, match=r"percent_on.*\(0, 1\]"),
    Call("KWinners percent_on 1.5", _KW, {"n": 10, "percent_on": 1.5}, match="percent_on"),
    Call("KWinners k_inference_factor 0", _KW, {"n": 10, "percent_on": 0.1, "k_inference_factor": 0.0},
         match="k_inference_factor"),
    Call("KWinners boost_strength -1", _KW, {"n": 10, "percent_on": 0.1, "boost_strength": -1.0},
         match="boost_strength"),
    Call("KWinners boost_strength_factor 0", _KW, {"n": 10, "percent_on": 0.1, "boost_strength_factor": 0.0},
         match="boost_strength_factor"),
    Call("KWinners duty_cycle_period 0", _KW, {"n": 10, "percent_on": 0.1, "duty_cycle_period": 0},
         match="duty_cycle_period"),
    Call("KWinners n 0", _KW, {"n": 0, "percent_on": 0.1}, match=r"\bn\b"),
    Call("KWinners2d channels 0", _KW2, {"channels": 0, "percent_on": 0.1}, match="channels"),
    Call("KWinners2d percent_on -0.5", _KW2, {"channels": 4, "percent_on": -0.5}, match="percent_on"),
    Call("SparseWeights sparsity 1", _SW, {"sparsity": 1.0}, match=r"sparsity", prepare=_wrap(_lin)),
    Call("SparseWeights sparsity -0.2", _SW, {"sparsity": -0.2}, match="sparsity", prepare=_wrap(_lin)),
    Call("SparseWeights2d sparsity 2", _SW2, {"sparsity": 2.0}, match="sparsity", prepare=_wrap(_conv)),
    Call("SparseWeights not a Linear", _SW, {"sparsity": 0.5}, match=r"wraps an nn\.Linear, got Conv2d",
         prepare=_wrap(_conv)),
    Call("SparseWeights2d not a Conv2d", _SW2, {"sparsity": 0.5}, match=r"wraps an nn\.Conv2d, got Linear",
         prepare=_wrap(_lin)),
    # ---- optimizers
    Call("ComplexSynapseSGD lr -1", _CSGD, {"lr": -1.0}, match="lr", prepare=_params),
    Call("ComplexSynapseSGD n_beakers -1", _CSGD, {"lr": 0.1, "n_beakers": -1}, match="n_beakers", prepare=_params),
    Call("ComplexSynapseSGD n_beakers 2.5", _CSGD, {"lr": 0.1, "n_beakers": 2.5}, match="n_beakers",
         prepare=_params),
    Call("ComplexSynapseSGD alpha 0", _CSGD, {"lr": 0.1, "alpha": 0.0}, match="alpha", prepare=_params),
    Call("ComplexSynapseSGD beta < alpha", _CSGD, {"lr": 0.1, "alpha": 10.0, "beta": 5.0}, match="beta",
         prepare=_params),
    Call("ComplexSynapseSGD momentum -1", _CSGD, {"lr": 0.1, "momentum": -1.0}, match="momentum", prepare=_params),
    Call("ComplexSynapseSGD nesterov without momentum", _CSGD, {"lr": 0.1, "nesterov": True}, match="nesterov",
         prepare=_params),
    Call("ComplexSynapseSGD weight_decay -1", _CSGD, {"lr": 0.1, "weight_decay": -1.0}, match="weight_decay",
         prepare=_params),
    Call("ComplexSynapseSGD timescale bogus", _CSGD, {"lr": 0.1, "timescale": "bogus"}, match="timescale",
         prepare=_params),
    Call("ComplexSynapseSGD nonfinite bogus", _CSGD, {"lr": 0.1, "nonfinite": "bogus"}, match="nonfinite",
         prepare=_params),
    Call("ComplexSynapseAdam lr nan", _CADAM, {"lr": float("nan")}, match="lr", prepare=_params),
    Call("ComplexSynapseAdam alpha -5", _CADAM, {"lr": 0.1, "alpha": -5.0}, match="alpha", prepare=_params),
    Call("ComplexSynapseAdam weight_decay -1", _CADAM, {"lr": 0.1, "weight_decay": -1.0}, match="weight_decay",
         prepare=_params),
    Call("beaker_chain n_beakers str", "avalanche_sparse.optim:beaker_chain", {}, ("5", 1.0, 2.0),
         match="n_beakers"),
    # ---- benchmarks
    Call("tensor_split_benchmark scenario bogus", "avalanche_sparse.benchmarks:tensor_split_benchmark",
         {"scenario": "bogus"}, (2,), match="scenario", prepare=_split),
    Call("tensor_split_benchmark n_experiences 3 of 4 classes",
         "avalanche_sparse.benchmarks:tensor_split_benchmark", {}, (3,), match="n_experiences", prepare=_split),
    Call("tensor_split_benchmark n_experiences 0", "avalanche_sparse.benchmarks:tensor_split_benchmark", {}, (0,),
         match="n_experiences", prepare=_split),
    Call("split_mnist scenario bogus", "avalanche_sparse.benchmarks:split_mnist", {"scenario": "bogus"},
         match="scenario"),
    Call("split_mnist n_experiences 3", "avalanche_sparse.benchmarks:split_mnist", {"n_experiences": 3},
         match="n_experiences"),
    Call("split_mnist subsample 0", "avalanche_sparse.benchmarks:split_mnist", {"subsample": 0.0},
         match="subsample"),
    Call("permuted_mnist n_experiences 0", "avalanche_sparse.benchmarks:permuted_mnist", {"n_experiences": 0},
         match="n_experiences"),
    Call("permuted_mnist subsample 1.5", "avalanche_sparse.benchmarks:permuted_mnist", {"subsample": 1.5},
         match="subsample"),
    Call("split_cifar10 source bogus", "avalanche_sparse.benchmarks:split_cifar10", {"source": "bogus"},
         match="source"),
    Call("split_cifar10 scenario bogus", "avalanche_sparse.benchmarks:split_cifar10", {"scenario": "bogus"},
         match="scenario"),
    # ---- registry
    Call("register a non-Method", "avalanche_sparse.strategies:register", {}, ("naive",), match="method"),
    Call("register a duplicate name", "avalanche_sparse.strategies:register", {}, (), match="already registered",
         prepare=lambda a, k: ((importlib.import_module("avalanche_sparse.strategies").get_method("naive"),), k)),
    Call("get_method unknown", "avalanche_sparse.strategies:get_method", {}, ("bogus",), raises=KeyError,
         match="unknown method 'bogus'; valid methods: .*naive"),
    Call("default_optimizer unknown optimizer", "avalanche_sparse.strategies:default_optimizer", {}, (),
         match="optimizer must be 'sgd' or 'adam'",
         prepare=lambda a, k: ((_lin(), importlib.import_module("avalanche_sparse.strategies").MethodContext(
             benchmark=None, hparams={"optimizer": "rmsprop", "lr": 0.1})), k)),
    Call("get_preset unknown", "reproduce.presets:get_preset", {}, ("huge",), raises=KeyError,
         match="unknown preset 'huge'; valid presets"),
    # ---- reproduce/table1.py flags
    Cli("table1 --preset unknown", _T1, ("--preset", "huge"), "unknown preset 'huge'; valid presets"),
    Cli("table1 --methods unknown", _T1, ("--methods", "bogus"), r"unknown method\(s\) \['bogus'\]; valid methods"),
    Cli("table1 --benchmarks unknown", _T1, ("--benchmarks", "mnist"), r"unknown benchmark\(s\) \['mnist'\]"),
    Cli("table1 --seeds negative", _T1, ("--seeds", "-1"), "--seeds must be non-negative"),
    Cli("table1 --seeds not int", _T1, ("--seeds", "one"), "argument --seeds: invalid int value: 'one'"),
    Cli("table1 --workers 0", _T1, ("--workers", "0"), "--workers must be >= 1"),
    Cli("table1 --workers not int", _T1, ("--workers", "two"), "argument --workers: invalid int value"),
    Cli("table1 --backend unknown", _T1, ("--backend", "slurm"), r"argument --backend: invalid choice: 'slurm'"),
    Cli("table1 --device unknown", _T1, ("--device", "tpu"), r"argument --device: invalid choice: 'tpu'"),
    Cli("table1 --address without ray", _T1, ("--address", "auto"), "--address applies to --backend ray only"),
    Cli("table1 --address malformed", _T1, ("--backend", "ray", "--address", "nohost"),
        "--address must be 'auto' or HOST:PORT, got 'nohost'"),
    Cli("table1 --cpus-per-cell 0", _T1, ("--backend", "ray", "--cpus-per-cell", "0"),
        "--cpus-per-cell must be a number > 0"),
    Cli("table1 --cpus-per-cell nan", _T1, ("--backend", "ray", "--cpus-per-cell", "nan"),
        "--cpus-per-cell must be a number > 0"),
    Cli("table1 --cpus-per-cell not a number", _T1, ("--backend", "ray", "--cpus-per-cell", "x"),
        "argument --cpus-per-cell: invalid float value"),
    Cli("table1 --gpus-per-cell -1", _T1, ("--backend", "ray", "--gpus-per-cell", "-1"),
        "--gpus-per-cell must be a number >= 0"),
    Cli("table1 --gpus-per-cell without ray", _T1, ("--gpus-per-cell", "0.5"),
        "--gpus-per-cell applies to --backend ray only"),
    Cli("table1 --workers with ray", _T1, ("--backend", "ray", "--workers", "2"),
        "--workers applies to --backend local only"),
    Cli("table1 unknown flag", _T1, ("--bogus",), "unrecognized arguments: --bogus"),
    # ---- python -m avalanche_sparse.benchmarks.data
    Cli("data fetch unknown dataset", _DATA, ("fetch", "imagenet"), r"invalid choice: 'imagenet'"),
    Cli("data unknown command", _DATA, ("download",), r"invalid choice: 'download'"),
    Cli("data fetch no dataset", _DATA, ("fetch",), "the following arguments are required: DATASET"),
]


def _resolve(target: str) -> Any:
    module, _, qualname = target.partition(":")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as err:
        pytest.skip(f"{module} is not importable here: {err}")
    for part in qualname.split("."):
        if not hasattr(obj, part):
            pytest.skip(f"{target} does not exist in this checkout")
        obj = getattr(obj, part)
    return obj


def run_case(case: Union[Call, Cli], tmp: Optional[Path] = None) -> str:
    """Run one catalogue entry; return the error message; raise AssertionError
    when the input is accepted or the message does not match."""
    if isinstance(case, Cli):
        main = _resolve(case.target)
        argv = list(case.argv)
        if case.target == _T1 and tmp is not None:
            argv += ["--out", str(tmp / "out"), "--no-progress"]
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                main(argv)
            except SystemExit as exc:
                msg = f"{exc.code if not isinstance(exc.code, int) else ''}\n{err.getvalue()}"
            else:
                raise AssertionError(f"{case.id}: accepted")
    else:
        fn = _resolve(case.target)
        args, kwargs = case.args, dict(case.kwargs)
        if case.prepare is not None:
            args, kwargs = case.prepare(args, kwargs)
        try:
            fn(*args, **kwargs)
        except case.raises as exc:
            msg = str(exc.args[0]) if exc.args else str(exc)
        else:
            raise AssertionError(f"{case.id}: accepted")
    if not re.search(case.match, msg):
        raise AssertionError(f"{case.id}: message {msg!r} does not match {case.match!r}")
    return msg


@pytest.mark.parametrize("case", CATALOGUE, ids=[c.id for c in CATALOGUE])
def test_bad_input_is_rejected_with_a_clear_message(case, tmp_path):
    run_case(case, tmp_path)


def count_tried(tmp: Path) -> tuple[int, list[str]]:
    """(entries tried here, ids that were not rejected as they should be)."""
    tried, bad = 0, []
    for case in CATALOGUE:
        try:
            run_case(case, tmp)
        except pytest.skip.Exception:
            continue
        except AssertionError as err:
            bad.append(str(err))
        tried += 1
    return tried, bad


_README = ROOT / "README.md"
_MARK = re.compile(r"(<!-- bad-inputs -->)(.*?)(<!-- /bad-inputs -->)", re.S)


def count_available() -> int:
    """Entries whose target exists in this checkout (what the count reports)."""
    n = 0
    for case in CATALOGUE:
        try:
            _resolve(case.target)
        except pytest.skip.Exception:
            continue
        n += 1
    return n


def test_readme_reports_the_catalogue_count():
    m = _MARK.search(_README.read_text())
    if m is None:
        pytest.fail("README.md lacks the <!-- bad-inputs --> count; run python tests/test_bad_inputs.py --update-readme")
    n = int(re.search(r"(\d+) bad inputs tried", m.group(2)).group(1))
    assert n == count_available(), "run python tests/test_bad_inputs.py --update-readme"


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        tried, bad = count_tried(Path(d))
    for b in bad:
        print("NOT REJECTED PROPERLY:", b)
    print(f"{tried} bad inputs tried, {tried - len(bad)} rejected with a clear message")
    if "--update-readme" in sys.argv and not bad:
        text = _README.read_text()
        line = f"{tried} bad inputs tried, all rejected with a clear message"
        _README.write_text(_MARK.sub(lambda m: m.group(1) + line + m.group(3), text))
        print("README.md updated")
    sys.exit(1 if bad else 0)
