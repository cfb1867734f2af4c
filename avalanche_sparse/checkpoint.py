"""Exact, data-only checkpoints of an Avalanche strategy between experiences.

Avalanche's own checkpointing pickles the whole strategy (datasets, loggers,
open files), which breaks in several known ways. Here a checkpoint is plain
data written with ``torch.save`` and read back with
``torch.load(weights_only=True)``: nested dicts and lists of tensors,
numbers and strings. It holds

* the model: ``state_dict()`` plus the plain Python attributes of every
  sub-module (counters, ``max_class_label``, sets of seen task labels);
* the optimizer: ``state_dict()`` plus the parameter *names* of every group
  (Avalanche rebuilds group 0 by name, so the order is restored by name);
* every plugin of the strategy, in order (method plugins, the evaluator and
  its metrics, the clock): through its own ``state_dict()`` /
  ``load_state_dict()`` when it has them, else a snapshot of its attributes
  (tensors, containers, nested plain objects such as Avalanche's
  ``ParamData``), restored *in place* so references kept elsewhere stay valid;
* strategy attributes added by a subclass (Avalanche ``Cumulative``'s growing
  dataset is rebuilt from the experiences already seen);
* the RNG states of Python, NumPy, torch (and CUDA when present).

:func:`strategy_state` refuses (:class:`UnsupportedStateError`) when some
state cannot be written as plain data, rather than write a checkpoint that
would resume differently; callers then simply run the cell from its start.

Restoring into a *freshly built* strategy (same method, benchmark and seed):
:func:`load_strategy_state` first replays the model adaptation of the
experiences already seen (multi-head classifiers grow heads), then loads
everything above. Resuming then gives the same numbers, bit for bit on CPU,
as a run that was never interrupted (tested in
``tests/test_checkpoint.py`` and ``tests/reproduce/test_faults.py``).
"""
from __future__ import annotations

import collections
import importlib
import io
import random
import sys
import types
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np
import torch
from torch import nn

from .io import atomic_write_bytes

__all__ = [
    "UnsupportedStateError",
    "capture",
    "restore",
    "capture_attrs",
    "restore_attrs",
    "rng_state",
    "set_rng_state",
    "strategy_state",
    "load_strategy_state",
    "save_checkpoint",
    "load_checkpoint",
    "STRATEGY_EXTRAS",
    "EXCLUDED_ATTRS",
]

FORMAT = 1


class UnsupportedStateError(TypeError):
    """Some state cannot be checkpointed as plain data (names where)."""


#: attributes never snapshotted, per class name: outputs and live handles, not state
EXCLUDED_ATTRS: dict[str, tuple[str, ...]] = {
    "EvaluationPlugin": ("loggers", "_metric_values"),
    "EpochProgressPlugin": ("_bar",),
}

#: the attributes every Avalanche 0.6 SupervisedTemplate sets itself; the
#: loop state is transient between experiences and the rest is rebuilt
_TEMPLATE_ATTRS = frozenset({
    "model", "device", "plugins", "experience", "is_training", "current_eval_stream",
    "_distributed_check", "_eval_streams", "optimizer", "_criterion", "train_epochs",
    "train_mb_size", "eval_mb_size", "retain_graph", "evaluator", "eval_every", "clock",
    "adapted_dataset", "dataloader", "mbatch", "mb_output", "loss", "_stop_training",
    "optimized_param_id", "peval_mode",
})
_MODULE_INTERNALS = frozenset(vars(nn.Module()))
_REF_ROOTS = ("avalanche", "avalanche_sparse", "torch", "numpy", "builtins", "collections",
              "math", "functools", "operator")
_SKIP = object()


# ---------------------------------------------------------------- plain data


def _ref(obj: Any) -> Optional[dict]:
    """``{"module", "qualname"}`` of an importable function or class, else None."""
    module = getattr(obj, "__module__", None)
    if not module:
        return None
    for qualname in (getattr(obj, "__qualname__", None), getattr(obj, "__name__", None)):
        if not qualname or "<" in qualname:
            continue
        try:
            if _resolve(module, qualname) is obj:
                return {"__kind__": "ref", "module": module, "qualname": qualname}
        except (ImportError, AttributeError, UnsupportedStateError):
            pass
    return None


def _resolve(module: str, qualname: str) -> Any:
    if module not in sys.modules and module.split(".")[0] not in _REF_ROOTS:
        raise UnsupportedStateError(f"refusing to import {module!r} while restoring a checkpoint")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _is_code(obj: Any) -> bool:
    return isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType,
                            types.BuiltinMethodType, type, staticmethod, classmethod)) or (
        callable(obj) and not hasattr(obj, "__dict__") and not isinstance(obj, (nn.Module, torch.Tensor))
    )


def capture(value: Any, where: str = "state", _stack: tuple = ()) -> Any:
    """``value`` as plain data (see the module docstring); functions and classes
    become references; code that cannot be referenced (lambdas) is skipped.

    :raises UnsupportedStateError: naming ``where`` for anything else.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, torch.Tensor):
        return {"__kind__": "tensor", "data": value.detach().to("cpu", copy=True),
                "device": str(value.device), "requires_grad": bool(value.requires_grad)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise UnsupportedStateError(f"{where}: a {value.dtype} array is not plain data")
        wide = value.astype(np.int64) if value.dtype.kind == "u" and value.dtype.itemsize > 1 else value
        return {"__kind__": "ndarray", "data": torch.from_numpy(np.ascontiguousarray(wide).copy()),
                "dtype": value.dtype.str}
    if isinstance(value, torch.Size):
        return {"__kind__": "size", "items": list(value)}
    if isinstance(value, torch.device):
        return {"__kind__": "device", "name": str(value)}
    if isinstance(value, torch.dtype):
        return {"__kind__": "dtype", "name": str(value).replace("torch.", "")}
    if id(value) in _stack:
        raise UnsupportedStateError(f"{where}: reference cycle")
    stack = _stack + (id(value),)
    if isinstance(value, (list, tuple, set, frozenset)):
        kind = "list" if isinstance(value, list) else type(value).__name__
        if kind not in ("list", "tuple", "set", "frozenset"):  # namedtuple and friends
            kind = "tuple" if isinstance(value, tuple) else kind
        items = [capture(v, f"{where}[{i}]", stack) for i, v in enumerate(value)]
        return {"__kind__": kind, "items": [v for v in items if v is not _SKIP]}
    if isinstance(value, dict):
        out: dict = {"__kind__": "dict", "keys": [], "values": []}
        if isinstance(value, collections.defaultdict) and value.default_factory is not None:
            factory = _ref(value.default_factory)
            if factory is None:
                raise UnsupportedStateError(f"{where}: defaultdict factory {value.default_factory!r}")
            out["factory"] = factory
        for k, v in value.items():
            enc = capture(v, f"{where}[{k!r}]", stack)
            if enc is _SKIP:
                continue
            out["keys"].append(capture(k, f"{where} key", stack))
            out["values"].append(enc)
        return out
    if isinstance(value, nn.Module):
        return {"__kind__": "module", "state": capture(value.state_dict(), where, stack),
                "attrs": _module_attrs(value, where, stack)}
    if _is_code(value):
        ref = _ref(value)
        return _SKIP if ref is None else ref
    if callable(getattr(value, "state_dict", None)) and callable(getattr(value, "load_state_dict", None)):
        return {"__kind__": "stateful", "class": type(value).__qualname__,
                "state": capture(value.state_dict(), f"{where}.state_dict()", stack)}
    if hasattr(value, "__dict__") and not isinstance(value, types.ModuleType):
        cls = _ref(type(value))
        if cls is None:
            raise UnsupportedStateError(f"{where}: class {type(value).__qualname__} is not importable")
        return {"__kind__": "object", "class": cls, "attrs": capture_attrs(value, where, stack)}
    raise UnsupportedStateError(f"{where}: cannot checkpoint a {type(value).__module__}."
                                f"{type(value).__qualname__}")


def capture_attrs(obj: Any, where: str = "object", _stack: tuple = ()) -> dict:
    """Plain snapshot of ``obj``'s instance attributes (minus :data:`EXCLUDED_ATTRS`
    and the names in ``obj.checkpoint_exclude``), keyed by attribute name."""
    skip = set(EXCLUDED_ATTRS.get(type(obj).__name__, ())) | set(getattr(obj, "checkpoint_exclude", ()))
    out = {}
    for name, v in vars(obj).items():
        if name in skip:
            continue
        enc = capture(v, f"{where}.{name}", _stack + (id(obj),))
        if enc is not _SKIP:
            out[name] = enc
    return out


def _module_attrs(module: nn.Module, where: str, stack: tuple) -> dict:
    """Plain Python attributes of every sub-module (not parameters/buffers)."""
    out = {}
    for name, sub in module.named_modules():
        attrs = {}
        for k, v in vars(sub).items():
            if k in _MODULE_INTERNALS or isinstance(v, (nn.Module, torch.Tensor)):
                continue
            enc = capture(v, f"{where}.{name or '<root>'}.{k}", stack + (id(sub),))
            if enc is not _SKIP:
                attrs[k] = enc
        if attrs:
            out[name] = attrs
    return out


def restore(current: Any, enc: Any) -> Any:
    """The value encoded by ``enc``, written *into* ``current`` where it is a
    container/tensor/object of the same kind (so shared references survive);
    return what the holder of ``current`` must now hold."""
    if not isinstance(enc, dict) or "__kind__" not in enc:
        return enc
    kind = enc["__kind__"]
    if kind == "tensor":
        data = enc["data"]
        if (isinstance(current, torch.Tensor) and current.shape == data.shape
                and current.dtype == data.dtype):
            with torch.no_grad():
                current.copy_(data)
            return current
        return data.to(enc["device"]).requires_grad_(enc["requires_grad"])
    if kind == "ndarray":
        return enc["data"].numpy().astype(np.dtype(enc["dtype"]))
    if kind == "size":
        return torch.Size(enc["items"])
    if kind == "device":
        return torch.device(enc["name"])
    if kind == "dtype":
        return getattr(torch, enc["name"])
    if kind == "ref":
        return _resolve(enc["module"], enc["qualname"])
    if kind == "list":
        if isinstance(current, list) and len(current) == len(enc["items"]):
            for i, e in enumerate(enc["items"]):
                current[i] = restore(current[i], e)
            return current
        return [restore(None, e) for e in enc["items"]]
    if kind in ("tuple", "set", "frozenset"):
        olds = list(current) if isinstance(current, tuple) and kind == "tuple" else []
        vals = [restore(olds[i] if i < len(olds) else None, e) for i, e in enumerate(enc["items"])]
        return {"tuple": tuple, "set": set, "frozenset": frozenset}[kind](vals)
    if kind == "dict":
        keys = [restore(None, k) for k in enc["keys"]]
        if "factory" in enc:
            factory = restore(None, enc["factory"])
            target = current if isinstance(current, collections.defaultdict) else collections.defaultdict(factory)
            target.default_factory = factory
        else:
            plain = isinstance(current, dict) and not isinstance(current, collections.defaultdict)
            target = current if plain else {}
        new = {k: restore(target.get(k) if isinstance(target, dict) else None, v)
               for k, v in zip(keys, enc["values"])}
        target.clear()
        target.update(new)
        return target
    if kind == "module":
        if not isinstance(current, nn.Module):
            raise UnsupportedStateError("cannot create a module while restoring; it must exist")
        _restore_module(current, enc)
        return current
    if kind == "stateful":
        if current is None or not callable(getattr(current, "load_state_dict", None)):
            raise UnsupportedStateError(f"cannot create a {enc['class']} while restoring; it must exist")
        current.load_state_dict(restore(None, enc["state"]))
        return current
    if kind == "object":
        cls = restore(None, enc["class"])
        target = current if type(current) is cls else cls.__new__(cls)
        restore_attrs(target, enc["attrs"])
        return target
    raise UnsupportedStateError(f"unknown checkpoint entry kind {kind!r}")


def restore_attrs(obj: Any, attrs: dict) -> None:
    """Inverse of :func:`capture_attrs`, in place."""
    for name, enc in attrs.items():
        setattr(obj, name, restore(getattr(obj, name, None), enc))


def _restore_module(module: nn.Module, enc: dict) -> None:
    subs = dict(module.named_modules())
    for name, attrs in enc["attrs"].items():
        if name not in subs:
            raise UnsupportedStateError(f"module has no sub-module {name!r} to restore")
        restore_attrs(subs[name], attrs)
    module.load_state_dict(restore(None, enc["state"]))


# ---------------------------------------------------------------- RNG


def rng_state() -> dict:
    """Python, NumPy (legacy global), torch and CUDA generator states, as plain data."""
    np_state = np.random.get_state()
    state = {
        "python": capture(random.getstate()),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict) -> None:
    """Inverse of :func:`rng_state`."""
    random.setstate(restore(None, state["python"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------- strategy


def _cumulative_capture(strategy) -> dict:
    return {}  # rebuilt from the experiences seen


def _cumulative_restore(strategy, saved: dict, train_exps: list) -> None:
    from avalanche.benchmarks.utils import concat_datasets

    strategy.dataset = None
    for exp in train_exps:  # the same concatenations, in the same order, as training did
        strategy.dataset = exp.dataset if strategy.dataset is None else \
            concat_datasets([strategy.dataset, exp.dataset])


#: strategy attribute -> (capture, restore) for subclass state that is not
#: plain data but can be rebuilt from the experiences already trained on
STRATEGY_EXTRAS: dict[str, tuple[Callable, Callable]] = {
    "dataset": (_cumulative_capture, _cumulative_restore),
}


def _optimizer_state(strategy) -> dict:
    names = {id(p): n for n, p in strategy.model.named_parameters()}
    groups = []
    for g in strategy.optimizer.param_groups:
        missing = [tuple(p.shape) for p in g["params"] if id(p) not in names]
        if missing:
            raise UnsupportedStateError(f"optimizer holds parameters that are not in the model: {missing}")
        groups.append([names[id(p)] for p in g["params"]])
    return {"param_names": groups, "state_dict": capture(strategy.optimizer.state_dict(), "optimizer"),
            "avalanche_managed": strategy.optimized_param_id is not None}


def _load_optimizer_state(strategy, saved: dict) -> None:
    params = dict(strategy.model.named_parameters())
    opt = strategy.optimizer
    if len(opt.param_groups) != len(saved["param_names"]):
        raise UnsupportedStateError("optimizer has another number of parameter groups than its checkpoint")
    for g, names in zip(opt.param_groups, saved["param_names"]):
        g["params"] = [params[n] for n in names]
    opt.state = collections.defaultdict(dict)
    opt.load_state_dict(restore(None, saved["state_dict"]))
    if saved["avalanche_managed"]:
        strategy.optimized_param_id = params


def strategy_state(strategy) -> dict:
    """Everything needed to continue ``strategy`` after the experience it just
    finished (model, optimizer, plugins, subclass attributes), plus RNG states.

    :raises UnsupportedStateError: when some state is not plain data.
    """
    plugins = []
    for i, p in enumerate(strategy.plugins):
        where = f"plugins[{i}] ({type(p).__name__})"
        if callable(getattr(p, "state_dict", None)) and callable(getattr(p, "load_state_dict", None)):
            plugins.append({"class": type(p).__qualname__, "state_dict": capture(p.state_dict(), where)})
        else:
            plugins.append({"class": type(p).__qualname__, "attrs": capture_attrs(p, where)})
    extras = {}
    for name, value in vars(strategy).items():
        if name in _TEMPLATE_ATTRS:
            continue
        if name in STRATEGY_EXTRAS:
            extras[name] = {"handler": name, "state": STRATEGY_EXTRAS[name][0](strategy)}
        else:
            enc = capture(value, f"strategy.{name}")
            if enc is not _SKIP:
                extras[name] = {"value": enc}
    return {
        "format": FORMAT,
        "strategy": type(strategy).__qualname__,
        "model": capture(strategy.model, "model"),
        "optimizer": _optimizer_state(strategy),
        "plugins": plugins,
        "extras": extras,
        "rng": rng_state(),
    }


def replay_adaptation(strategy, train_exps: Iterable, eval_streams: Iterable = ()) -> None:
    """Repeat the model adaptation calls of training on ``train_exps`` (each
    followed by evaluation on ``eval_streams``) so that dynamic modules
    (multi-head classifiers...) have the structure they had then."""
    from avalanche.models.utils import avalanche_model_adaptation

    model = strategy.model
    eval_streams = [list(s) for s in eval_streams]
    for exp in train_exps:
        model.train()
        avalanche_model_adaptation(model, exp)
        model.eval()
        for stream in eval_streams:
            for e in stream:
                avalanche_model_adaptation(model, e)
    model.train()


def load_strategy_state(strategy, state: dict, *, train_exps: list, eval_streams: Iterable = ()) -> None:
    """Load ``state`` (from :func:`strategy_state`) into a freshly built
    ``strategy`` of the same kind, after training on ``train_exps`` and
    evaluating on ``eval_streams`` after each of them had been done."""
    if state.get("format") != FORMAT:
        raise UnsupportedStateError(f"checkpoint format {state.get('format')!r}, expected {FORMAT}")
    if state["strategy"] != type(strategy).__qualname__:
        raise UnsupportedStateError(f"checkpoint of a {state['strategy']}, not a {type(strategy).__qualname__}")
    if [p["class"] for p in state["plugins"]] != [type(p).__qualname__ for p in strategy.plugins]:
        raise UnsupportedStateError("the strategy's plugins differ from the checkpoint's")
    replay_adaptation(strategy, train_exps, eval_streams)
    _restore_module(strategy.model, state["model"])
    _load_optimizer_state(strategy, state["optimizer"])
    for p, saved in zip(strategy.plugins, state["plugins"]):
        if "state_dict" in saved:
            p.load_state_dict(restore(None, saved["state_dict"]))
        else:
            restore_attrs(p, saved["attrs"])
    for name, saved in state["extras"].items():
        if "handler" in saved:
            STRATEGY_EXTRAS[saved["handler"]][1](strategy, saved["state"], list(train_exps))
        else:
            setattr(strategy, name, restore(getattr(strategy, name, None), saved["value"]))
    set_rng_state(state["rng"])


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """``torch.save`` ``payload`` (plain data) to ``path`` atomically."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path) -> Optional[dict]:
    """The payload at ``path`` (plain data only), or None if absent or unreadable."""
    try:
        return torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        return None
    except Exception:  # truncated/corrupt/foreign file: start the cell over
        return None

