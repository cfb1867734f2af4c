r"""Active dendrites in Avalanche: context plugins and the Table 1 rows.

Plugins (usable with any Avalanche strategy: ``Naive``, ``SynapticIntelligence``...):

* :class:`PrototypeContextPlugin` -- before each training experience, builds
  the task's prototype (the mean of its flattened, normalised training inputs)
  and tells the :class:`~avalanche_sparse.models.DendriticMLP` which task it is
  training; at evaluation the model picks the nearest prototype per sample (no
  task label) and the plugin records, per evaluation experience, which task
  was inferred for each sample and the task-inference accuracy (published as
  Avalanche metrics ``TaskInference_Acc_Exp/...`` and ``TaskInference_Acc_Stream/...``,
  so every logger sees them). In ``onehot`` mode it hands the oracle task id
  of the experience to the model instead.
* :class:`OptimizerResetPlugin` -- clears the optimizer state before every
  training experience: the reference re-creates Adam after every task
  (``reset_optimizer_after_task=True`` by default), except with SI.
* :class:`RezeroAfterStepPlugin` -- re-zeroes the pruned weights of every
  sparse layer (feed-forward and dendritic) after every optimizer step.
* :class:`SafeSynapticIntelligencePlugin` -- Avalanche's SI plugin with its
  CPU aliasing bug fixed (see the class) and the reference's unclipped
  importance; used by ``dendrites_si``.

Protocol: Iyer et al. (2022), Front. Neurorobot. 16:846219 (arXiv:2201.00042),
configurations of Numenta's htmpapers ``going_beyond_the_point_neuron``
(read for the facts; our code).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Optional

import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metric_results import MetricValue
from avalanche.training.plugins import SynapticIntelligencePlugin
from torch import Tensor

from .sparse import SparseNetworkPlugin

__all__ = [
    "PrototypeContextPlugin",
    "OptimizerResetPlugin",
    "RezeroAfterStepPlugin",
    "SafeSynapticIntelligencePlugin",
    "experience_task_id",
    "dendritic_model_of",
]

_TASK_SOURCES = ("experience", "task_label")


def dendritic_model_of(strategy) -> "torch.nn.Module":
    """The strategy's model if it is a :class:`~avalanche_sparse.models.DendriticMLP`."""
    from avalanche_sparse.models import DendriticMLP

    model = strategy.model
    if not isinstance(model, DendriticMLP):
        raise TypeError(
            f"this plugin needs an avalanche_sparse.models.DendriticMLP as the strategy's model, "
            f"got {type(model).__name__}"
        )
    return model


def experience_task_id(experience, source: str = "experience") -> int:
    """Task id of an experience: its index in the stream (``"experience"``,
    right for domain-incremental benchmarks such as Permuted MNIST, whose task
    label is always 0) or its task label (``"task_label"``)."""
    if source == "experience":
        return int(experience.current_experience)
    if source == "task_label":
        labels = list(experience.task_labels)
        if len(labels) != 1:
            raise ValueError(f"task_source='task_label' needs one task label per experience, got {labels}")
        return int(labels[0])
    raise ValueError(f"task_source must be one of {_TASK_SOURCES}, got {source!r}")


class PrototypeContextPlugin(SupervisedPlugin):
    r"""Hands task contexts to a :class:`~avalanche_sparse.models.DendriticMLP`.

    Callbacks:

    * ``before_training_exp``: prototype mode -- the sum and count of the
      experience's flattened training inputs (its own data only, evaluation
      transforms, so replay buffers or augmentations do not leak in) are
      merged into the task's prototype (:meth:`DendriticMLP.update_prototype`,
      a running mean); both modes -- ``model.context_task`` is set to the
      task, so every training sample uses that context.
    * ``before_eval_exp``: one-hot mode -- ``context_task`` is the evaluated
      experience's task (the oracle); prototype mode -- nothing: the model in
      eval mode infers the nearest prototype per sample.
    * ``after_eval_iteration``: records the task used for each sample
      (``model.last_task_ids``).
    * ``after_eval_exp`` / ``after_eval``: prototype mode -- stores the
      inferred task of every sample in :attr:`inferred_tasks` and publishes the
      task-inference accuracy per experience and over the stream; one-hot mode
      -- restores the training ``context_task`` (periodic evaluation).

    Evaluating before the first training experience (e.g. Avalanche's initial
    periodic evaluation, ``eval_every > 0``) raises a ``RuntimeError``: there
    is no prototype to infer from yet.

    :param task_source: ``"experience"`` (task = index of the experience in
        its stream) or ``"task_label"``.
    :param batch_size: batch size of the pass that builds a prototype.
    """

    def __init__(self, *, task_source: str = "experience", batch_size: int = 2048) -> None:
        super().__init__()
        if task_source not in _TASK_SOURCES:
            raise ValueError(f"task_source must be one of {_TASK_SOURCES}, got {task_source!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.task_source = task_source
        self.batch_size = batch_size
        #: eval experience's task -> task inferred for each of its samples (last evaluation)
        self.inferred_tasks: dict[int, Tensor] = {}
        #: eval experience's task -> fraction of its samples whose task was inferred correctly
        self.task_inference_accuracy: dict[int, float] = {}
        self._batches: list[Tensor] = []
        self._saved_task: Optional[int] = None

    # -- training --------------------------------------------------------------
    @torch.no_grad()
    def _input_sum(self, dataset) -> tuple[Tensor, int]:
        from torch.utils.data import DataLoader

        ds = dataset.eval() if hasattr(dataset, "eval") else dataset
        loader = DataLoader(ds, batch_size=self.batch_size, shuffle=False, num_workers=0,
                            collate_fn=getattr(ds, "collate_fn", None))
        total: Optional[Tensor] = None
        count = 0
        for batch in loader:
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            x = x.reshape(x.shape[0], -1).double()
            total = x.sum(0) if total is None else total + x.sum(0)
            count += x.shape[0]
        if total is None:
            raise ValueError("the training experience has no samples: cannot build its prototype")
        return total, count

    def before_training_exp(self, strategy, *args, **kwargs):
        model = dendritic_model_of(strategy)
        if model.num_segments == 0:
            return
        task = experience_task_id(strategy.experience, self.task_source)
        if model.context_mode == "prototype":
            total, count = self._input_sum(strategy.experience.dataset)
            model.update_prototype(task, total, count)
        model.context_task = task

    # -- evaluation --------------------------------------------------------------
    def before_eval(self, strategy, *args, **kwargs):
        model = dendritic_model_of(strategy)
        self._saved_task = model.context_task
        self.inferred_tasks = {}
        self.task_inference_accuracy = {}

    def before_eval_exp(self, strategy, *args, **kwargs):
        model = dendritic_model_of(strategy)
        self._batches = []
        if model.num_segments > 0 and model.context_mode == "onehot":
            model.context_task = experience_task_id(strategy.experience, self.task_source)

    def after_eval_iteration(self, strategy, *args, **kwargs):
        model = dendritic_model_of(strategy)
        if model.num_segments > 0 and model.last_task_ids is not None:
            self._batches.append(model.last_task_ids.detach().cpu())

    def after_eval_exp(self, strategy, *args, **kwargs):
        model = dendritic_model_of(strategy)
        if model.num_segments == 0 or model.context_mode != "prototype" or not self._batches:
            return
        task = experience_task_id(strategy.experience, self.task_source)
        ids = torch.cat(self._batches)
        self.inferred_tasks[task] = ids
        acc = float((ids == task).double().mean())
        self.task_inference_accuracy[task] = acc
        stream = strategy.experience.origin_stream.name
        self._publish(strategy, f"TaskInference_Acc_Exp/eval_phase/{stream}_stream/Exp{task:03d}", acc)

    def after_eval(self, strategy, *args, **kwargs):
        model = dendritic_model_of(strategy)
        model.context_task = self._saved_task
        if self.inferred_tasks:
            correct = sum(int((ids == t).sum()) for t, ids in self.inferred_tasks.items())
            total = sum(ids.numel() for ids in self.inferred_tasks.values())
            stream = next(iter(strategy.current_eval_stream)).origin_stream.name \
                if getattr(strategy, "current_eval_stream", None) else "eval"
            self._publish(strategy, f"TaskInference_Acc_Stream/eval_phase/{stream}_stream", correct / total)

    def task_confusion(self, num_tasks: Optional[int] = None) -> Tensor:
        """``C[t, s]`` = fraction of the samples of evaluated task ``t`` whose
        inferred task is ``s`` (last evaluation)."""
        if not self.inferred_tasks:
            raise RuntimeError("no evaluation with prototype contexts recorded yet")
        n = num_tasks or 1 + max(max(self.inferred_tasks), max(int(v.max()) for v in self.inferred_tasks.values()))
        conf = torch.zeros(n, n, dtype=torch.float64)
        for t, ids in self.inferred_tasks.items():
            conf[t] = torch.bincount(ids, minlength=n)[:n].double() / ids.numel()
        return conf

    def _publish(self, strategy, name: str, value: float) -> None:
        evaluator = getattr(strategy, "evaluator", None)
        if evaluator is not None and hasattr(evaluator, "publish_metric_value"):
            evaluator.publish_metric_value(MetricValue(self, name, value, strategy.clock.train_iterations))


class OptimizerResetPlugin(SupervisedPlugin):
    """Clears the optimizer state (``optimizer.state``) in ``before_training_exp``.

    Avalanche calls ``make_optimizer`` before this callback, so the reset
    follows it. ``torch.optim`` optimizers build their per-parameter state
    lazily in ``step()`` and keep hyper-parameters in ``param_groups``
    (untouched), so this is exactly re-creating the optimizer with the same
    settings before every task, as the reference does for Adam after each task
    (Iyer et al. 2022; htmpapers ``going_beyond_the_point_neuron``). The first
    experience starts from a fresh state anyway.
    """

    def __init__(self) -> None:
        super().__init__()
        self.resets = 0

    def before_training_exp(self, strategy, *args, **kwargs):
        strategy.optimizer.state = defaultdict(dict)
        self.resets += 1


class RezeroAfterStepPlugin(SparseNetworkPlugin):
    """:class:`~avalanche_sparse.strategies.SparseNetworkPlugin` without boost
    decay: re-zeroes the fixed masks of sparse feed-forward and dendritic
    weights after every optimizer step (the optimizer does not know them)
    and at the start of every experience."""

    def __init__(self) -> None:
        super().__init__(rezero=True, decay_boost=False)


class SafeSynapticIntelligencePlugin(SynapticIntelligencePlugin):
    r"""Avalanche's :class:`SynapticIntelligencePlugin` (Zenke, Poole & Ganguli
    2017) made to work on CPU, with the reference's unclipped importance.

    Bug worked around (avalanche-lib 0.6.0): the plugin snapshots parameters
    with ``param.detach().cpu().flatten()``, which on CPU is a *view* of the
    live parameter, not a copy. So the "old" weights before each step and the
    anchor weights of the penalty follow the optimizer: the path integral
    :math:`\omega` and the penalty :math:`\sum_k \Omega_k (\theta_k -
    \tilde\theta_k)^2` are always 0 and SI silently degrades to fine-tuning
    (checked: ``cum_trajectory`` stays exactly 0 with the stock plugin on CPU).
    Here both snapshots are cloned right after the stock code takes them.

    ``clip_to``: the stock plugin clamps the importance at 0.001 after every
    experience; the dendrites reference (nupic.research ``SynapticIntelligence``
    mixin) does not clamp, so the default here is no clamp (``None``). Penalty:
    ``si_lambda / 2`` times the importance-weighted squared distance (the
    reference uses ``c`` without the 1/2, so ``si_lambda = 2 c``); ``eps`` is the
    damping :math:`\xi`.
    """

    def __init__(self, si_lambda, eps: float = 0.0000001, excluded_parameters=None,
                 device="as_strategy", *, clip_to=None) -> None:
        super().__init__(si_lambda, eps=eps, excluded_parameters=excluded_parameters, device=device)
        if clip_to is not None and not float(clip_to) > 0:
            raise ValueError(f"clip_to must be > 0 or None, got {clip_to!r}")
        self.clip_to = float("inf") if clip_to is None else float(clip_to)

    @staticmethod
    def _clone_all(store) -> None:
        for item in store.values():
            item.data = item.data.clone()

    def before_training_exp(self, strategy, **kwargs):
        super().before_training_exp(strategy, **kwargs)
        self._clone_all(self.ewc_data[0])  # penalty anchor: a copy, not the live weights

    def before_training_iteration(self, strategy, **kwargs):
        super().before_training_iteration(strategy, **kwargs)
        self._clone_all(self.syn_data["old_theta"])  # weights before this step

    def after_training_exp(self, strategy, **kwargs):
        SynapticIntelligencePlugin.update_ewc_data(
            strategy.model, self.ewc_data, self.syn_data, self.clip_to,
            self.excluded_parameters, 1, eps=self.eps,
        )


# ----------------------------------------------------------------------------
# Table 1 rows (Permuted MNIST)
# ----------------------------------------------------------------------------
def paper_settings(ctx) -> dict:
    """The hyper-parameters a dendrite row runs with.

    With the full data (protocol ``subsample`` is ``None``: the full preset)
    the method's ``paper_protocol`` (network size, epochs, batch sizes, lr of
    the reference configuration) overrides the grid protocol. With subsampled
    data (the quick smoke preset) the protocol's small network, epochs, batch
    size and lr are kept, so a cell takes seconds; the method's structure
    (k-WTA, sparsity, segments, SI, optimizer resets) is the same in both.

    A row may also carry ``paper_protocol_by_tasks`` (number of tasks, as a
    string, -> settings): the reference tuned epochs and lr separately for 2,
    5, 10, 25, 50 and 100 tasks, and with the full data the entry for the
    benchmark's number of experiences overrides ``paper_protocol``. Other task
    counts keep ``paper_protocol`` (the 10-task settings).
    """
    hp = dict(ctx.hparams)
    if hp.get("subsample") is None:
        hp.update(hp.get("paper_protocol", {}))
        by_tasks = hp.get("paper_protocol_by_tasks") or {}
        hp.update(by_tasks.get(str(int(ctx.benchmark.n_experiences)), {}))
    return hp


def _dendritic_model(ctx):
    from avalanche_sparse.models import DendriticMLP

    hp = paper_settings(ctx)
    n_in = 1
    for s in ctx.benchmark.input_shape:
        n_in *= int(s)
    segments = hp.get("num_segments")
    segments = int(ctx.benchmark.n_experiences) if segments is None else int(segments)
    return DendriticMLP(
        n_in, int(ctx.benchmark.n_classes), hidden_sizes=[int(h) for h in hp["hidden_sizes"]],
        num_segments=segments, dim_context=n_in, kw_percent_on=hp["kw_percent_on"],
        context_percent_on=float(hp["context_percent_on"]), weight_sparsity=float(hp["weight_sparsity"]),
        dendrite_sparsity=float(hp["dendrite_sparsity"]), context="prototype", seed=int(ctx.seed),
    )


def _mlp_baseline_model(ctx):
    from avalanche_sparse.models import MLP, modified_init_mlp

    hp = paper_settings(ctx)
    n_in = 1
    for s in ctx.benchmark.input_shape:
        n_in *= int(s)
    return modified_init_mlp(MLP(n_in, int(ctx.benchmark.n_classes),
                                 hidden_sizes=tuple(int(h) for h in hp["hidden_sizes"])))


def _adam(model, ctx):
    from .registry import torch_optimizer

    hp = paper_settings(ctx)
    return torch_optimizer("adam", model.parameters(), lr=float(hp["lr"]),
                           fused=bool(hp.get("fused_optimizer", True)))


def _loop_settings(ctx) -> dict:
    hp = paper_settings(ctx)
    return {"train_epochs": int(hp["train_epochs"]), "train_mb_size": int(hp["train_mb_size"]),
            "eval_mb_size": int(hp.get("eval_mb_size", 512))}


def _dendrite_plugins(ctx) -> list:
    hp = ctx.hparams
    plugins: list = [PrototypeContextPlugin(), RezeroAfterStepPlugin()]
    if hp.get("reset_optimizer", True):
        plugins.append(OptimizerResetPlugin())
    if hp.get("analysis", True):
        from .dendrite_analysis import DendriteAnalysisPlugin

        plugins.append(DendriteAnalysisPlugin())
    if hp.get("si_lambda") is not None:
        plugins.append(SafeSynapticIntelligencePlugin(
            si_lambda=float(hp["si_lambda"]), eps=float(hp["si_eps"]),
            excluded_parameters=["*segments*"]))
    return plugins


def _reset_only(ctx) -> list:
    return [OptimizerResetPlugin()]


#: PROTOTYPE_BASE of the reference (htmpapers going_beyond_the_point_neuron,
#: permutedMNIST/experiments/prototype.py)
_STRUCTURE = {"kw_percent_on": 0.05, "context_percent_on": 0.1, "weight_sparsity": 0.5,
              "dendrite_sparsity": 0.0, "num_segments": None, "reset_optimizer": True}
_PAPER_LOOP = {"hidden_sizes": [2048, 2048], "train_mb_size": 256, "eval_mb_size": 512}
#: the reference's PROTOTYPE_2 / _5 / _25 (epochs and lr tuned per number of
#: tasks; 10 tasks is the row's ``paper_protocol``); num_segments follows the
#: number of tasks in every one
_PROTOTYPE_BY_TASKS = {"2": {"lr": 5e-4, "train_epochs": 1}, "5": {"lr": 5e-4, "train_epochs": 1},
                       "25": {"lr": 3e-4, "train_epochs": 5}}


def _register_rows() -> None:
    from .registry import Method, register

    rows = [
        ("dendrites",
         "Active Dendrites Network, prototype contexts inferred at test time (Iyer et al. 2022)",
         _dendritic_model, _dendrite_plugins, dict(_STRUCTURE, paper_protocol_by_tasks=_PROTOTYPE_BY_TASKS),
         # PROTOTYPE_10: Adam 5e-4, 3 epochs per task
         dict(_PAPER_LOOP, lr=5e-4, train_epochs=3)),
        ("dendrites_si",
         "Active Dendrites Network + Synaptic Intelligence on feed-forward weights (Iyer et al. 2022)",
         _dendritic_model, _dendrite_plugins,
         # SI_PROTOTYPE_10: c = 0.1 (si_lambda = 2c here), damping 0.1, Adam not reset
         dict(_STRUCTURE, reset_optimizer=False, si_lambda=0.2, si_eps=0.1),
         dict(_PAPER_LOOP, hidden_sizes=[2000, 2000], lr=5e-4, train_epochs=20)),
        ("dendrites_only",
         "ablation: active dendrites with ReLU instead of k-WTA (Iyer et al. 2022)",
         _dendritic_model, _dendrite_plugins, dict(_STRUCTURE, kw_percent_on=None),
         # ACTIVE_DENDRITES_ONLY_10: Adam 5e-6, 5 epochs
         dict(_PAPER_LOOP, lr=5e-6, train_epochs=5)),
        ("sparse_only",
         "ablation: k-WTA and sparse weights, no dendritic segments (Iyer et al. 2022)",
         _dendritic_model, _dendrite_plugins, dict(_STRUCTURE, num_segments=0),
         # SPARSE_REPRESENTATIONS_ONLY_10: Adam 1e-4, 5 epochs
         dict(_PAPER_LOOP, lr=1e-4, train_epochs=5)),
        ("dendrites_mlp_baseline",
         "dense 3-layer MLP of the dendrites paper's size, modified init (Iyer et al. 2022)",
         _mlp_baseline_model, lambda ctx: _reset_only(ctx), {"reset_optimizer": True},
         # THREE_LAYER_MLP_10: Adam 3e-6, 5 epochs
         dict(_PAPER_LOOP, lr=3e-6, train_epochs=5)),
    ]
    for name, desc, model, plugins, structure, paper in rows:
        register(Method(
            name=name, description=desc, model=model, optimizer=_adam, plugins=plugins,
            strategy="avalanche.training.Naive", strategy_kwargs=_loop_settings,
            hparams={**structure, "paper_protocol": paper},
            benchmarks=("permuted_mnist",),
        ))


_register_rows()
