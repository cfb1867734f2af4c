r"""The Active Dendrites Network (``DendriticMLP``) as an Avalanche model.

The network of Iyer et al. (2022, Front. Neurorobot. 16:846219,
arXiv:2201.00042; bioRxiv 10.1101/2021.10.25.465651) for Permuted MNIST::

    input (784) --> [ (sparse) linear + dendritic segments --> k-WTA ] x len(hidden_sizes)
                --> sparse linear head (10 units, shared by all tasks)
                         ^
    context  ------------+ (the same context goes to every hidden layer)

* Hidden layer: :class:`~avalanche_sparse.layers.DendriticLayer` (absolute-max
  sigmoid gate) followed by :class:`~avalanche_sparse.layers.KWinners` with
  ``k_inference_factor=1`` and no boosting (the paper's setting), or a ReLU
  when ``kw_percent_on`` is ``None``/0 (the "dendrites only" ablation).
  ``num_segments=0`` removes the dendrites (the "sparse representations only"
  ablation): the context is then ignored.
* ``weight_sparsity`` and ``dendrite_sparsity`` are the fraction of ZERO
  weights (as in the paper's ``DendriticMLP``; the opposite of
  ``nupic.torch``'s deprecated ``weight_sparsity``, which was the density).
  The head is sparse too.
* Initialisation ``"modified"``: :math:`\mathcal U(\pm 1/\sqrt{a\,w\,F})` with
  input density :math:`a` = 1 for the first layer, ``kw_percent_on`` after a
  k-WTA layer (1 after a ReLU), ``context_percent_on`` for the segments. For
  PROTOTYPE_10 the bounds are 0.0505 (first layer), 0.1398 (second layer and
  head) and 0.1129 (dendrites).

Context modes
-------------
``"prototype"`` (``dim_context == input_size``): the model stores one
prototype per task (buffer ``prototypes``, the mean of that task's flattened,
normalised training inputs). In training mode every sample uses the prototype
of :attr:`DendriticMLP.context_task` (set by
:class:`avalanche_sparse.strategies.PrototypeContextPlugin`); in evaluation
mode every sample gets its nearest stored prototype (Euclidean,
``cdist(...).argmin``), so no task label is needed at test time. The inferred
task of each sample of the last batch is kept in :attr:`last_task_ids`.

``"onehot"`` (oracle, for ablations): the context is the one-hot vector of the
task id, of length ``dim_context`` (the known tasks are ``0..dim_context-1``).
The task id is :attr:`context_task` when set (the plugin sets it from the
experience), else the ``task_labels`` Avalanche passes to ``forward``.

Labels are shared by all tasks: one 10-way head (Permuted MNIST is
domain-incremental; the reference uses ``target % 10``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from avalanche.models import MultiTaskModule
from torch import Tensor, nn

from ..layers.dendrites import DendriticLayer, modified_kaiming_uniform_
from ..layers.kwinners import KWinners
from ..layers.sparse_weights import SparseWeights

__all__ = ["CONTEXT_MODES", "DendriticMLP", "modified_init_mlp"]

#: context modes of :class:`DendriticMLP`
CONTEXT_MODES = ("prototype", "onehot")


def _check_percent(value, name: str, allow_none: bool) -> Optional[float]:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    v = float(value)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {v}")
    return v


class DendriticMLP(MultiTaskModule):
    r"""Active Dendrites Network (see the module docstring).

    :param input_size: flattened input size (784 for MNIST).
    :param output_size: classes of the shared head.
    :param hidden_sizes: width of each hidden layer (paper: ``[2048, 2048]``).
    :param num_segments: dendritic segments per hidden unit (paper: the
        number of tasks); 0 removes the dendrites.
    :param dim_context: context length (``input_size`` for prototypes; at
        least the number of tasks for one-hot contexts).
    :param kw_percent_on: fraction of active units of the k-WTA (paper 0.05);
        ``None`` or 0: ReLU instead.
    :param context_percent_on: density of the context, used only by the
        "modified" dendrite init (paper 0.1).
    :param weight_sparsity: fraction of ZERO feed-forward weights, hidden
        layers and head (paper 0.5).
    :param dendrite_sparsity: fraction of ZERO segment weights (paper 0).
    :param context: ``"prototype"`` or ``"onehot"``.
    :param gate: dendritic gate, see :data:`avalanche_sparse.layers.GATES`.
    :param init: ``"modified"`` (the paper's) or ``"kaiming"`` (PyTorch default).
    :param seed: seed of the weight masks (``None``: torch's global RNG).
    """

    prototypes: Tensor
    prototype_counts: Tensor

    def __init__(
        self,
        input_size: int = 784,
        output_size: int = 10,
        *,
        hidden_sizes: Sequence[int] = (2048, 2048),
        num_segments: int = 10,
        dim_context: int = 784,
        kw_percent_on: Optional[float] = 0.05,
        context_percent_on: float = 0.1,
        weight_sparsity: float = 0.5,
        dendrite_sparsity: float = 0.0,
        context: str = "prototype",
        gate: str = "absolute_max",
        init: str = "modified",
        seed: Optional[int] = None,
    ) -> None:
        super().__init__()
        for name, v in (("input_size", input_size), ("output_size", output_size), ("dim_context", dim_context)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        sizes = list(hidden_sizes)
        if not sizes or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in sizes):
            raise ValueError(f"hidden_sizes must be a non-empty list of ints >= 1, got {hidden_sizes!r}")
        if isinstance(num_segments, bool) or not isinstance(num_segments, int) or num_segments < 0:
            raise ValueError(
                f"num_segments must be an int >= 0 (0: no dendrites), got {num_segments!r}"
            )
        if context not in CONTEXT_MODES:
            raise ValueError(f"context must be one of {CONTEXT_MODES}, got {context!r}")
        if init not in ("modified", "kaiming"):
            raise ValueError(f"init must be 'modified' or 'kaiming', got {init!r}")
        kw = _check_percent(kw_percent_on, "kw_percent_on", allow_none=True)
        if not 0.0 < float(context_percent_on) <= 1.0:
            raise ValueError(f"context_percent_on must be in (0, 1], got {context_percent_on!r}")
        ws = _check_percent(weight_sparsity, "weight_sparsity", allow_none=False)
        ds = _check_percent(dendrite_sparsity, "dendrite_sparsity", allow_none=False)
        if context == "prototype" and num_segments > 0 and dim_context != input_size:
            raise ValueError(
                f"prototype contexts are means of inputs, so dim_context must equal input_size "
                f"({input_size}), got {dim_context}"
            )
        self.input_size = input_size
        self.output_size = output_size
        self.hidden_sizes = sizes
        self.num_segments = num_segments
        self.dim_context = dim_context
        self.kw_percent_on = kw if kw else None
        self.context_percent_on = float(context_percent_on)
        self.weight_sparsity = ws
        self.dendrite_sparsity = ds
        self.context_mode = context
        self.max_class_label = output_size

        layers: list[nn.Module] = []
        activations: list[nn.Module] = []
        prev = input_size
        for i, h in enumerate(sizes):
            lseed = None if seed is None else seed + 10 * i
            if num_segments > 0:
                layer: nn.Module = DendriticLayer(
                    prev, h, num_segments, dim_context, weight_sparsity=ws, dendrite_sparsity=ds,
                    gate=gate, seed=lseed,
                )
            else:
                layer = _linear(prev, h, ws, lseed)
            if init == "modified":
                a = 1.0 if i == 0 else (self.kw_percent_on or 1.0)
                if num_segments > 0:
                    layer.init_modified(input_density=a, context_density=self.context_percent_on)
                else:
                    _init_linear_modified(layer, a, ws)
            layers.append(layer)
            activations.append(
                KWinners(h, self.kw_percent_on, k_inference_factor=1.0, boost_strength=0.0,
                         boost_strength_factor=1.0)
                if self.kw_percent_on else nn.ReLU()
            )
            prev = h
        self.hidden_layers = nn.ModuleList(layers)
        self.activations = nn.ModuleList(activations)
        self.classifier = _linear(prev, output_size, ws, None if seed is None else seed + 999)
        if init == "modified":
            _init_linear_modified(self.classifier, self.kw_percent_on or 1.0, ws)

        self.register_buffer("prototypes", torch.zeros(0, dim_context))
        self.register_buffer("prototype_counts", torch.zeros(0, dtype=torch.long))
        #: task whose context the next forward uses (training; one-hot oracle)
        self.context_task: Optional[int] = None
        #: task id used for each sample of the last forward (inferred at eval in prototype mode)
        self.last_task_ids: Optional[Tensor] = None
        #: keep the hidden activations of the last forward in :attr:`last_hidden`
        self.record_activity = False
        self.last_hidden: list[Tensor] = []

    # -- prototypes ------------------------------------------------------------
    @property
    def num_prototypes(self) -> int:
        return int(self.prototypes.shape[0])

    @torch.no_grad()
    def update_prototype(self, task_id: int, input_sum: Tensor, count: int) -> None:
        r"""Merge ``count`` training inputs (flattened, summed: ``input_sum``)
        into the prototype of ``task_id``: the prototype is the running mean
        of every input seen for that task. ``task_id`` must be an existing
        prototype or the next one (``num_prototypes``)."""
        if isinstance(task_id, bool) or not isinstance(task_id, int) or not 0 <= task_id <= self.num_prototypes:
            raise ValueError(
                f"task_id must be an int in [0, {self.num_prototypes}] (an existing prototype or the "
                f"next one), got {task_id!r}"
            )
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be an int >= 1, got {count!r}")
        s = input_sum.detach().reshape(-1).to(self.prototypes)
        if s.shape[0] != self.dim_context:
            raise ValueError(
                f"input_sum has {s.shape[0]} values, the context has dim_context={self.dim_context}"
            )
        if task_id == self.num_prototypes:
            self.prototypes = torch.cat([self.prototypes, (s / count).unsqueeze(0)])
            self.prototype_counts = torch.cat(
                [self.prototype_counts, torch.tensor([count], device=self.prototype_counts.device)]
            )
        else:
            n = int(self.prototype_counts[task_id])
            self.prototypes[task_id] = (self.prototypes[task_id] * n + s) / (n + count)
            self.prototype_counts[task_id] += count

    def infer_tasks(self, x: Tensor) -> Tensor:
        """Index of the nearest prototype (Euclidean) for each row of ``x``
        (flattened inputs)."""
        if self.num_prototypes == 0:
            raise RuntimeError(
                "DendriticMLP(context='prototype') has no prototypes yet: train on at least one "
                "experience with PrototypeContextPlugin (or call update_prototype) before evaluating"
            )
        return torch.cdist(x.detach(), self.prototypes).argmin(1)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        # prototypes grow with the tasks: take the saved shape
        for name in ("prototypes", "prototype_counts"):
            key = prefix + name
            if key in state_dict:
                setattr(self, name, torch.empty_like(state_dict[key], device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- contexts ----------------------------------------------------------------
    def _task_ids(self, x: Tensor, task_labels) -> Tensor:
        b = x.shape[0]
        if self.context_task is not None:
            return torch.full((b,), int(self.context_task), dtype=torch.long, device=x.device)
        if isinstance(task_labels, int):
            return torch.full((b,), task_labels, dtype=torch.long, device=x.device)
        if task_labels is None:
            raise ValueError(
                "onehot context needs a task id: set context_task (PrototypeContextPlugin does) "
                "or pass task_labels"
            )
        t = torch.as_tensor(task_labels, device=x.device).long().reshape(-1)
        if t.shape[0] != b:
            raise ValueError(f"task_labels has {t.shape[0]} entries for {b} samples")
        return t

    def contexts(self, x: Tensor, task_labels=None) -> tuple[Tensor, Tensor]:
        """Distinct context rows and the row of each sample, ``((n, dim_context),
        (batch,))``, for flattened inputs ``x``; also sets :attr:`last_task_ids`."""
        if self.context_mode == "prototype":
            if self.training:
                t = self.context_task
                if t is None:
                    raise RuntimeError(
                        "DendriticMLP(context='prototype') in training mode needs context_task (the "
                        "current task's prototype); use PrototypeContextPlugin"
                    )
                if not 0 <= t < self.num_prototypes:
                    raise RuntimeError(f"context_task={t} has no prototype ({self.num_prototypes} stored)")
                # the whole batch shares one prototype: a single context row
                self.last_task_ids = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
                return self.prototypes[t:t + 1], torch.zeros_like(self.last_task_ids)
            ids = self.infer_tasks(x)
            self.last_task_ids = ids
            return self.prototypes, ids
        ids = self._task_ids(x, task_labels)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.dim_context):
            bad = ids[(ids < 0) | (ids >= self.dim_context)][0].item()
            raise ValueError(
                f"task label {bad} is outside the known tasks [0, {self.dim_context}) of the "
                f"one-hot context (dim_context={self.dim_context})"
            )
        self.last_task_ids = ids
        return torch.eye(self.dim_context, device=x.device, dtype=x.dtype), ids

    # -- forward -------------------------------------------------------------------
    def forward(self, x: Tensor, task_labels=None) -> Tensor:  # type: ignore[override]
        x = x.reshape(x.shape[0], -1)
        if x.shape[1] != self.input_size:
            raise ValueError(f"inputs have {x.shape[1]} features, the model expects input_size={self.input_size}")
        rows = index = None
        if self.num_segments > 0:
            rows, index = self.contexts(x, task_labels)
        hidden = []
        h = x
        for layer, act in zip(self.hidden_layers, self.activations):
            h = act(layer(h, rows, index) if rows is not None else layer(h))
            if self.record_activity:
                hidden.append(h.detach())
        self.last_hidden = hidden
        return self.classifier(h)

    def forward_single_task(self, x: Tensor, task_label: int) -> Tensor:
        return self.forward(x, task_label)

    def last_winning_segments(self) -> list[Tensor]:
        """Winning segment per (sample, unit) of each hidden layer in the last forward."""
        return [layer.last_winning_segments for layer in self.hidden_layers if isinstance(layer, DendriticLayer)]


def _linear(n_in: int, n_out: int, sparsity: float, seed: Optional[int]) -> nn.Module:
    lin = nn.Linear(n_in, n_out)
    return SparseWeights(lin, sparsity, seed=seed) if sparsity > 0 else lin


def _init_linear_modified(layer: nn.Module, input_density: float, weight_sparsity: float) -> None:
    w = layer.weight
    modified_kaiming_uniform_(w, fan_in=w.shape[1], input_density=input_density,
                              weight_density=1.0 - weight_sparsity)
    if isinstance(layer, SparseWeights):
        layer.rezero_weights()


def modified_init_mlp(model: nn.Module, hidden_input_density: float = 0.5) -> nn.Module:
    r"""The reference's ``ModifiedInitStandardMLP`` init for a dense MLP: every
    ``nn.Linear`` weight from :math:`\mathcal U(\pm 1/\sqrt{a F})` with
    :math:`a = 1` for the first layer and ``hidden_input_density`` (0.5: half
    of the ReLU units are assumed active) for the others; biases untouched.
    Returns ``model``."""
    first = True
    for m in model.modules():
        if isinstance(m, nn.Linear):
            modified_kaiming_uniform_(m.weight, fan_in=m.weight.shape[1],
                                      input_density=1.0 if first else hidden_input_density)
            first = False
    return model
