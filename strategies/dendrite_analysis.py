r"""Subnetwork analysis of an Active Dendrites Network, logged to TensorBoard.

After every evaluation, :class:`DendriteAnalysisPlugin` summarises, per
evaluated task :math:`t` (one evaluation experience) and hidden layer:

* the *hidden-activation-per-task* map :math:`A_{tu}` = fraction of the
  task's samples for which unit :math:`u` is active (non-zero after the k-WTA),
  the analysis of Figure 6 of the bioRxiv preprint (Grewal et al. 2021,
  10.1101/2021.10.25.465651; htmpapers ``hidden_activations_per_task.ipynb``,
  which plots the first 64 units); distinct, sparse rows mean task-specific
  subnetworks;
* the *segment-winner* map :math:`W_{ts}` = fraction of (sample, unit) pairs
  of the task whose winning dendritic segment is :math:`s` (absolute-max
  gate): which segments each task recruits.

Both are kept as tensors (:attr:`DendriteAnalysisPlugin.activity_maps`,
:attr:`DendriteAnalysisPlugin.segment_winner_maps`) and drawn as heat maps
into every Avalanche ``TensorboardLogger`` of the strategy's evaluator
(``Dendrites/hidden_activity_per_task/layer<l>``,
``Dendrites/segment_winners_per_task/layer<l>``; step = number of training
experiences done). The task-inference accuracy of the prototype rule is
published by :class:`~avalanche_sparse.strategies.PrototypeContextPlugin`
(``TaskInference_Acc_Exp/...``), so it reaches TensorBoard as a scalar.
"""
from __future__ import annotations

from typing import Optional

import torch
from avalanche.core import SupervisedPlugin
from torch import Tensor

from .dendrites import dendritic_model_of, experience_task_id

__all__ = ["DendriteAnalysisPlugin"]


class DendriteAnalysisPlugin(SupervisedPlugin):
    """Per-task hidden activity and segment-winner maps (see the module docstring).

    :param num_units: units drawn in the activity image (the paper: 64);
        the tensors keep all units.
    :param task_source: as in :class:`PrototypeContextPlugin`.
    :param log_images: draw the maps into the evaluator's TensorBoard loggers.
    """

    def __init__(self, *, num_units: int = 64, task_source: str = "experience", log_images: bool = True) -> None:
        super().__init__()
        if isinstance(num_units, bool) or not isinstance(num_units, int) or num_units < 1:
            raise ValueError(f"num_units must be an int >= 1, got {num_units!r}")
        if task_source not in ("experience", "task_label"):
            raise ValueError(f"task_source must be one of ('experience', 'task_label'), got {task_source!r}")
        self.num_units = num_units
        self.task_source = task_source
        self.log_images = bool(log_images)
        #: per hidden layer: (tasks, units) fraction of samples with the unit active
        self.activity_maps: list[Tensor] = []
        #: per dendritic layer: (tasks, segments) fraction of (sample, unit) pairs won by each segment
        self.segment_winner_maps: list[Tensor] = []
        #: task ids of the rows of the maps
        self.tasks: list[int] = []
        self._active: dict[int, list[Tensor]] = {}
        self._winners: dict[int, list[Tensor]] = {}
        self._count: dict[int, int] = {}
        self._task: Optional[int] = None
        self._was_recording = False

    def before_eval(self, strategy, *args, **kwargs):
        model = dendritic_model_of(strategy)
        self._was_recording = model.record_activity
        model.record_activity = True
        self._active, self._winners, self._count = {}, {}, {}

    def before_eval_exp(self, strategy, *args, **kwargs):
        self._task = experience_task_id(strategy.experience, self.task_source)

    @torch.no_grad()
    def after_eval_iteration(self, strategy, *args, **kwargs):
        model = dendritic_model_of(strategy)
        t = self._task
        active = [(h != 0).sum(0).double().cpu() for h in model.last_hidden]
        s = max(model.num_segments, 1)
        wins = [torch.bincount(w.reshape(-1).cpu(), minlength=s).double() for w in model.last_winning_segments()]
        if t not in self._count:
            self._active[t], self._winners[t], self._count[t] = active, wins, 0
        else:
            self._active[t] = [a + b for a, b in zip(self._active[t], active)]
            self._winners[t] = [a + b for a, b in zip(self._winners[t], wins)]
        self._count[t] += int(model.last_hidden[0].shape[0]) if model.last_hidden else 0

    def after_eval(self, strategy, *args, **kwargs):
        model = dendritic_model_of(strategy)
        model.record_activity = self._was_recording
        model.last_hidden = []
        if not self._count:
            return
        self.tasks = sorted(self._count)
        n_layers = len(self._active[self.tasks[0]])
        self.activity_maps = [
            torch.stack([self._active[t][layer] / max(self._count[t], 1) for t in self.tasks]).float()
            for layer in range(n_layers)
        ]
        self.segment_winner_maps = [
            torch.stack([self._winners[t][layer] / self._winners[t][layer].sum().clamp(min=1) for t in self.tasks]).float()
            for layer in range(len(self._winners[self.tasks[0]]))
        ]
        if self.log_images:
            self._log(strategy)

    # -- TensorBoard -------------------------------------------------------------
    def _log(self, strategy) -> None:
        from avalanche.logging import TensorboardLogger

        evaluator = getattr(strategy, "evaluator", None)
        loggers = [lg for lg in getattr(evaluator, "loggers", []) if isinstance(lg, TensorboardLogger)]
        if not loggers:
            return
        step = int(strategy.clock.train_exp_counter)
        figures = []
        for layer, amap in enumerate(self.activity_maps):
            figures.append((f"Dendrites/hidden_activity_per_task/layer{layer}",
                            _heatmap(amap[:, : self.num_units], self.tasks, "hidden unit", "Greens",
                                     f"fraction of task samples with the unit active (layer {layer})")))
        for layer, wmap in enumerate(self.segment_winner_maps):
            figures.append((f"Dendrites/segment_winners_per_task/layer{layer}",
                            _heatmap(wmap, self.tasks, "winning segment", "viridis",
                                     f"fraction of (sample, unit) pairs won by each segment (layer {layer})")))
        for tag, fig in figures:
            for lg in loggers:
                lg.writer.add_figure(tag, fig, global_step=step, close=False)
            _close(fig)
        for lg in loggers:
            lg.writer.flush()


def _heatmap(values: Tensor, tasks: list[int], xlabel: str, cmap: str, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arr = values.numpy()
    fig, ax = plt.subplots(figsize=(min(12.0, 2.0 + 0.12 * arr.shape[1]), 1.2 + 0.3 * arr.shape[0]), dpi=80)
    im = ax.imshow(arr, cmap=cmap, vmin=0.0, vmax=max(float(arr.max()), 1e-9), aspect="auto")
    ax.set_yticks(range(len(tasks)))
    ax.set_yticklabels([str(t) for t in tasks])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("task")
    ax.set_title(title, fontsize=7)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)
