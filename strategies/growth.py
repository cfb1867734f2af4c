r"""Dynamic sparse synapses: grow new connections for every task, consolidate old ones.

A sparse network (:class:`~avalanche_sparse.layers.SparseWeights` /
:class:`~avalanche_sparse.layers.SparseWeights2d` layers, e.g. 2-10 %
connectivity) learns each new experience by *growing* a budget of new synapses
while the synapses that earlier experiences own are *consolidated*: frozen, or
trained with a scaled-down learning rate. This is the idea of the
"sparse-dynamic-synapses" seed, which never built the growth part. Related
published methods: PackNet (Mallya & Lazebnik 2018, CVPR: prune, then freeze
per task), Piggyback (Mallya et al. 2018, ECCV: per-task masks), SET (Mocanu
et al. 2018, Nat. Commun.) and RigL (Evci et al. 2020, ICML: prune-and-regrow,
new connections chosen by gradient magnitude).

Per experience :math:`t` (0-based count of the experiences this plugin has
trained on), for every sparse layer with weight :math:`W` (:math:`N` entries),
keep mask :math:`M` (``~zero_mask``) and ownership :math:`O`:

1. **Grow** (``before_training_exp``; from :math:`t = 1` on, or from
   :math:`t = 0` with ``grow_on_first=True``): the budget is
   :math:`b = ` ``grow_count`` or :math:`\mathrm{round}(` ``grow_fraction``
   :math:`\cdot N)`, capped by the room left under the connectivity cap,
   :math:`n = \min(b,\ \lfloor d_{max} N \rfloor - |M|)`. Among the pruned
   entries (:math:`M_{ij} = 0`) the :math:`n` with the largest score become
   synapses: ``criterion="gradient"`` scores
   :math:`s_{ij} = \bigl|\sum_{k=1}^{K} \partial L_k / \partial W_{ij}\bigr|`
   over the first :math:`K` = ``grad_batches`` minibatches of the current
   experience (RigL's criterion: the first-order loss decrease a new
   connection would give; autograd returns the dense gradient, pruned entries
   included); ``criterion="random"`` scores with a seeded uniform draw (SET).
   The growth clears those entries of ``zero_mask`` - the layer's own mask,
   the only masking mechanism - and sets :math:`O_{ij} = t`. New weights
   start at 0 (``init="zero"``, the default: the network's function, hence
   its accuracy on old tasks, is unchanged at the moment of growth) or
   :math:`\mathcal{U}(-a, a)` with :math:`a` = ``init_scale``
   (``init="uniform"``). Their entries in the optimizer state (momentum, Adam
   moments) are zeroed, so stale statistics collected while they were pruned
   do not push them.

2. **Consolidate** (every optimizer step of experience :math:`t > 0`): the
   synapses with :math:`O_{ij} < t` (grown by an earlier experience, or
   initial, :math:`O_{ij} = -1`) are

   * frozen (``consolidation="freeze"``): their gradient is zeroed in
     ``after_backward`` and, because momentum, Adam moments or weight decay
     still move a weight whose gradient is zero, their values are restored
     bit-exactly in ``after_update``;
   * or slowed (``consolidation="scale"``): in ``after_update`` their step is
     scaled, :math:`w \leftarrow w_{old} + c\,(w_{new} - w_{old})` with
     :math:`c` = ``lr_scale``. This is an exact learning-rate factor for any
     optimizer (scaling the *gradient* instead would do nothing under Adam,
     which is invariant to the gradient's scale).

   Only the weights of the sparse layers are consolidated: biases, dense
   layers (e.g. the classifier) and k-WTA duty cycles keep learning.

3. **Prune** (``after_training_exp``, optional): the fraction
   ``prune_fraction`` of this experience's new synapses with the smallest
   :math:`|w|` is pruned again (``zero_mask`` set, weight zeroed, owner
   cleared), freeing room under the cap for later experiences.

Ownership :math:`O` is an ``int32`` tensor of the weight's shape per layer,
kept in the plugin and keyed by the layer's module name: ``-1`` = initial
synapse, :math:`t \ge 0` = grown during experience :math:`t`, ``-2`` = no
synapse (pruned entry). :meth:`SynapseGrowthPlugin.state_dict` /
:meth:`~SynapseGrowthPlugin.load_state_dict` save and restore it with the
experience counter, the random generator and the statistics; the masks
themselves are buffers of the model and travel with its ``state_dict``.

Metrics (published to the strategy's ``EvaluationPlugin``, so every logger -
TensorBoard included - receives them; ``log_metrics=False`` turns them off):

* ``Growth/connectivity/<layer>`` and ``Growth/connectivity/all``: fraction of
  non-zero-mask weights, after growth and after pruning (x = training
  iterations so far);
* ``Growth/grown|frozen|pruned/<layer>`` and ``.../all``: synapses grown,
  consolidated and pruned in each experience (x = experience);
* ``Growth/owned_fraction/initial`` and ``Growth/owned_fraction/exp<k>``:
  fraction of all synapses owned by the initial network and by each experience,
  at the end of every experience (x = experience).

The plugin re-zeroes the pruned weights after every optimizer step
(``rezero=True``), so it can be used without any other sparse-network plugin.
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, Optional

import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metric_results import MetricValue
from avalanche.models.utils import avalanche_forward
from torch import Tensor, nn

from avalanche_sparse.layers.sparse_weights import SparseWeightsBase

__all__ = ["SynapseGrowthPlugin", "sparse_layers", "NO_OWNER", "INITIAL_OWNER",
           "growth_schedule", "growth_plugin_from_hparams", "register_sparse_growth"]

#: ownership value of an entry that is not a synapse (pruned)
NO_OWNER = -2
#: ownership value of a synapse of the initial network
INITIAL_OWNER = -1

_CRITERIA = ("gradient", "random")
_CONSOLIDATIONS = ("freeze", "scale")
_INITS = ("zero", "uniform")


def sparse_layers(model: nn.Module) -> dict[str, SparseWeightsBase]:
    """The :class:`SparseWeightsBase` sub-modules of ``model`` by module name
    (``""`` for the model itself)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, SparseWeightsBase)}


def _fraction(value: object, name: str, *, low_open: bool, high_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    lo_ok = v > 0.0 if low_open else v >= 0.0
    hi_ok = v < 1.0 if high_open else v <= 1.0
    if not (lo_ok and hi_ok):
        rng = ("(" if low_open else "[") + "0, 1" + (")" if high_open else "]")
        raise ValueError(f"{name} must be in {rng}, got {v}")
    return v


def _choice(value: object, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return str(value)


class SynapseGrowthPlugin(SupervisedPlugin):
    """Grow new synapses for each experience in the ``zero_mask`` of every
    sparse layer and consolidate the synapses of earlier experiences. See the
    module docstring for the rule and the metrics.

    :param grow_fraction: growth budget per layer and experience as a fraction
        of the layer's weight count, in (0, 1] and at most ``max_density``.
        The default budget is 0.01 when neither this nor ``grow_count`` is
        given.
    :param grow_count: growth budget per layer and experience as a number of
        synapses (``>= 1``); give this or ``grow_fraction``, not both.
    :param criterion: ``"gradient"`` (largest accumulated gradient magnitude
        of the pruned weights) or ``"random"``.
    :param grad_batches: minibatches of the current experience whose
        gradients are summed for ``criterion="gradient"`` (``>= 1``).
    :param grow_on_first: also grow at the first experience (otherwise the
        first experience trains the initial network only).
    :param max_density: connectivity cap per layer, in (0, 1]: growth never
        takes a layer above ``floor(max_density * N)`` synapses.
    :param consolidation: ``"freeze"`` or ``"scale"`` for the synapses owned
        by earlier experiences.
    :param lr_scale: learning-rate factor of consolidated synapses with
        ``consolidation="scale"``, in (0, 1).
    :param prune_fraction: fraction of this experience's new synapses pruned
        (smallest ``|w|``) at the end of the experience, in [0, 1).
    :param init: ``"zero"`` or ``"uniform"`` initial value of new synapses.
    :param init_scale: bound ``a`` of ``U(-a, a)`` for ``init="uniform"`` (``> 0``).
    :param seed: seed of the plugin's generator (random criterion, uniform
        init); ``None`` draws the seed from torch's global RNG.
    :param rezero: re-zero the pruned weights after every optimizer step.
    :param log_metrics: publish the growth metrics to the evaluator.
    """

    def __init__(
        self,
        *,
        grow_fraction: Optional[float] = None,
        grow_count: Optional[int] = None,
        criterion: str = "gradient",
        grad_batches: int = 4,
        grow_on_first: bool = False,
        max_density: float = 0.1,
        consolidation: str = "freeze",
        lr_scale: float = 0.1,
        prune_fraction: float = 0.0,
        init: str = "zero",
        init_scale: float = 1e-2,
        seed: Optional[int] = 0,
        rezero: bool = True,
        log_metrics: bool = True,
    ) -> None:
        super().__init__()
        self.max_density = _fraction(max_density, "max_density (connectivity cap)",
                                     low_open=True, high_open=False)
        if grow_fraction is not None and grow_count is not None:
            raise ValueError("give the growth budget as grow_fraction or grow_count, not both")
        if grow_count is not None:
            if isinstance(grow_count, bool) or not isinstance(grow_count, Integral) or grow_count < 1:
                raise ValueError(f"grow_count must be an integer >= 1, got {grow_count!r}")
            self.grow_count: Optional[int] = int(grow_count)
            self.grow_fraction: Optional[float] = None
        else:
            frac = 0.01 if grow_fraction is None else grow_fraction
            self.grow_fraction = _fraction(frac, "grow_fraction", low_open=True, high_open=False)
            if self.grow_fraction > self.max_density:
                raise ValueError(
                    f"grow_fraction={self.grow_fraction} exceeds the connectivity cap "
                    f"max_density={self.max_density}: one experience's growth alone would take a "
                    f"layer above the cap; use grow_fraction <= max_density"
                )
            self.grow_count = None
        self.criterion = _choice(criterion, "criterion", _CRITERIA)
        if isinstance(grad_batches, bool) or not isinstance(grad_batches, Integral) or grad_batches < 1:
            raise ValueError(f"grad_batches must be an integer >= 1, got {grad_batches!r}")
        self.grad_batches = int(grad_batches)
        self.grow_on_first = bool(grow_on_first)
        self.consolidation = _choice(consolidation, "consolidation", _CONSOLIDATIONS)
        self.lr_scale = _fraction(lr_scale, "lr_scale", low_open=True, high_open=True)
        self.prune_fraction = _fraction(prune_fraction, "prune_fraction", low_open=False, high_open=True)
        self.init = _choice(init, "init", _INITS)
        if isinstance(init_scale, bool) or not isinstance(init_scale, Real):
            raise TypeError(f"init_scale must be a real number, got {init_scale!r}")
        if not math.isfinite(float(init_scale)) or init_scale <= 0.0:
            raise ValueError(f"init_scale must be a finite real > 0, got {init_scale!r}")
        self.init_scale = float(init_scale)
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        if isinstance(seed, bool) or not isinstance(seed, Integral):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.rezero = bool(rezero)
        self.log_metrics = bool(log_metrics)

        #: layer name -> int32 ownership tensor (weight's shape)
        self.owner: dict[str, Tensor] = {}
        #: experiences begun so far (the owner id of the current experience's growth)
        self.experience_index = 0
        #: one dict of statistics per finished experience
        self.history: list[dict[str, Any]] = []
        self._current: Optional[dict[str, Any]] = None
        # layer name -> flat indices of consolidated synapses (+ frozen values)
        self._consolidated: dict[str, Tensor] = {}
        self._frozen_values: dict[str, Tensor] = {}
        self._pre_step: dict[str, Tensor] = {}

    # ------------------------------------------------------------------ setup
    def _budget(self, numel: int) -> int:
        if self.grow_count is not None:
            return self.grow_count
        return int(round(self.grow_fraction * numel))  # type: ignore[operator]

    def _cap(self, numel: int) -> int:
        return int(math.floor(self.max_density * numel + 1e-9))

    def _layers(self, model: nn.Module) -> dict[str, SparseWeightsBase]:
        """Sparse layers of ``model``, with ownership created or synced and the
        budget checked against the cap."""
        layers = sparse_layers(model)
        if not layers:
            raise ValueError(
                f"SynapseGrowthPlugin needs a model with at least one SparseWeightsBase layer "
                f"(avalanche_sparse.layers.SparseWeights around nn.Linear or SparseWeights2d "
                f"around nn.Conv2d), whose zero_mask it grows; {type(model).__name__} has none"
            )
        unknown = set(self.owner) - set(layers)
        if unknown:
            raise ValueError(f"ownership state names layers the model does not have: {sorted(unknown)}")
        for name, layer in layers.items():
            zm = layer.zero_mask
            n = zm.numel()
            cap, budget = self._cap(n), self._budget(n)
            if budget > cap:
                raise ValueError(
                    f"growth budget of {budget} synapses per experience in layer {name!r} exceeds its "
                    f"connectivity cap max_density={self.max_density} ({cap} of {n} weights); lower "
                    f"grow_count/grow_fraction or raise max_density"
                )
            active = int((~zm).sum())
            if name not in self.owner:
                if active > cap:
                    raise ValueError(
                        f"layer {name!r} starts with density {active / n:.4g} ({active} of {n} weights), "
                        f"above the connectivity cap max_density={self.max_density}; raise max_density "
                        f"or build a sparser layer"
                    )
                self.owner[name] = torch.full(zm.shape, INITIAL_OWNER, dtype=torch.int32, device=zm.device)
            own = self.owner[name]
            if own.shape != zm.shape:
                raise ValueError(f"ownership of layer {name!r} has shape {tuple(own.shape)}, "
                                 f"its weight {tuple(zm.shape)}")
            own = own.to(zm.device)
            # sync with the mask (another plugin may have changed it): pruned
            # entries own nothing, synapses of unknown origin count as initial
            own.masked_fill_(zm, NO_OWNER)
            own.masked_fill_(~zm & (own == NO_OWNER), INITIAL_OWNER)
            self.owner[name] = own
        return layers

    # ---------------------------------------------------------------- growth
    @torch.enable_grad()
    def _gradient_scores(self, strategy, layers: dict[str, SparseWeightsBase]) -> dict[str, Tensor]:
        r""":math:`|\sum_k \partial L_k/\partial W|` over ``grad_batches``
        minibatches of ``strategy.dataloader``. Parameter gradients, buffers
        (duty cycles, BatchNorm statistics) and module modes are left as they
        were; the loss is the strategy's criterion without plugin penalties."""
        model = strategy.model
        weights = [layer.module.weight for layer in layers.values()]
        acc = [torch.zeros_like(w) for w in weights]
        persistent = set(model.state_dict().keys())
        saved = {k: b.detach().clone() for k, b in model.named_buffers() if k in persistent}
        modes = {m: m.training for m in model.modules()}
        model.train()
        try:
            for i, mb in enumerate(strategy.dataloader):
                if i >= self.grad_batches:
                    break
                x, y, t = (v.to(strategy.device) for v in (mb[0], mb[1], mb[-1]))
                loss = strategy._criterion(avalanche_forward(model, x, t), y)
                grads = torch.autograd.grad(loss, weights, allow_unused=True)
                for a, g in zip(acc, grads):
                    if g is not None:
                        a.add_(g)
        finally:
            model.load_state_dict(saved, strict=False)
            for m, mode in modes.items():
                m.training = mode
        return {name: a.abs_() for name, a in zip(layers, acc)}

    def _grow(self, strategy, layers: dict[str, SparseWeightsBase]) -> dict[str, int]:
        scores = self._gradient_scores(strategy, layers) if self.criterion == "gradient" else {}
        with torch.no_grad():
            return self._grow_from_scores(strategy, layers, scores)

    def _grow_from_scores(self, strategy, layers: dict[str, SparseWeightsBase],
                          scores: dict[str, Tensor]) -> dict[str, int]:
        t = self.experience_index
        grown: dict[str, int] = {}
        optim_state = getattr(getattr(strategy, "optimizer", None), "state", {})
        for name, layer in layers.items():
            zm = layer.zero_mask
            n = zm.numel()
            active = n - int(zm.sum())
            k = min(self._budget(n), self._cap(n) - active, n - active)
            if k <= 0:
                grown[name] = 0
                continue
            if self.criterion == "gradient":
                s = scores[name].reshape(-1).clone()
            else:
                s = torch.rand(n, generator=self.generator).to(zm.device)
            s.masked_fill_(~zm.reshape(-1), -math.inf)
            idx = s.topk(k, sorted=False).indices
            zm.view(-1).index_fill_(0, idx, False)
            self.owner[name].view(-1).index_fill_(0, idx, t)
            w = layer.module.weight
            if self.init == "zero":
                w.view(-1).index_fill_(0, idx, 0.0)
            else:
                vals = (torch.rand(k, generator=self.generator) * 2.0 - 1.0) * self.init_scale
                w.view(-1).index_copy_(0, idx, vals.to(device=w.device, dtype=w.dtype))
            for v in optim_state.get(w, {}).values():
                if isinstance(v, Tensor) and v.shape == w.shape:
                    v.view(-1).index_fill_(0, idx, 0)
            grown[name] = k
        return grown

    @torch.no_grad()
    def _prune(self, layers: dict[str, SparseWeightsBase]) -> dict[str, int]:
        t = self.experience_index
        pruned: dict[str, int] = {}
        for name, layer in layers.items():
            own = self.owner[name].view(-1)
            new = (own == t).nonzero().squeeze(1)
            k = int(round(self.prune_fraction * new.numel()))
            if k <= 0:
                pruned[name] = 0
                continue
            w = layer.module.weight.view(-1)
            weakest = new[w.index_select(0, new).abs().topk(k, largest=False, sorted=False).indices]
            layer.zero_mask.view(-1).index_fill_(0, weakest, True)
            own.index_fill_(0, weakest, NO_OWNER)
            layer.rezero_weights()
            pruned[name] = k
        return pruned

    # ------------------------------------------------------------- callbacks
    def before_training_exp(self, strategy, *args, **kwargs):
        layers = self._layers(strategy.model)
        t = self.experience_index
        grow = t > 0 or self.grow_on_first
        grown = self._grow(strategy, layers) if grow else {name: 0 for name in layers}
        self._consolidated.clear()
        self._frozen_values.clear()
        frozen: dict[str, int] = {}
        for name, layer in layers.items():
            if t > 0:
                own = self.owner[name].view(-1)
                idx = ((own != NO_OWNER) & (own < t)).nonzero().squeeze(1)
            else:
                idx = torch.empty(0, dtype=torch.long, device=layer.zero_mask.device)
            self._consolidated[name] = idx
            if self.consolidation == "freeze":
                self._frozen_values[name] = layer.module.weight.detach().view(-1).index_select(0, idx)
            frozen[name] = int(idx.numel())
        self._current = {"experience": t, "grown": grown, "frozen": frozen,
                         "pruned": {name: 0 for name in layers}}
        self._emit_connectivity(strategy, layers)

    def after_backward(self, strategy, *args, **kwargs):
        if self.consolidation != "freeze":
            return
        for name, layer in sparse_layers(strategy.model).items():
            g = layer.module.weight.grad
            idx = self._consolidated.get(name)
            if g is not None and idx is not None and idx.numel():
                g.view(-1).index_fill_(0, idx, 0.0)

    def before_update(self, strategy, *args, **kwargs):
        if self.consolidation != "scale":
            return
        for name, layer in sparse_layers(strategy.model).items():
            idx = self._consolidated.get(name)
            if idx is not None and idx.numel():
                self._pre_step[name] = layer.module.weight.detach().view(-1).index_select(0, idx)

    @torch.no_grad()
    def after_update(self, strategy, *args, **kwargs):
        for name, layer in sparse_layers(strategy.model).items():
            w = layer.module.weight.view(-1)
            idx = self._consolidated.get(name)
            if idx is not None and idx.numel():
                if self.consolidation == "freeze":
                    w.index_copy_(0, idx, self._frozen_values[name])
                else:
                    old = self._pre_step.pop(name)
                    new = w.index_select(0, idx)
                    w.index_copy_(0, idx, old.add_(new.sub_(old), alpha=self.lr_scale))
            if self.rezero:
                layer.rezero_weights()

    def after_training_exp(self, strategy, *args, **kwargs):
        layers = self._layers(strategy.model)
        if self._current is None:  # training started without before_training_exp
            return
        if self.prune_fraction > 0.0:
            self._current["pruned"] = self._prune(layers)
        self._current["owned_fraction"] = self.owned_fractions()
        self._current["connectivity"] = self.connectivity(strategy.model)
        self.history.append(self._current)
        self._emit_connectivity(strategy, layers)
        self._emit_experience(strategy, self._current)
        self._current = None
        self._consolidated.clear()
        self._frozen_values.clear()
        self._pre_step.clear()
        self.experience_index += 1

    # --------------------------------------------------------------- metrics
    def connectivity(self, model: nn.Module) -> dict[str, float]:
        """Fraction of non-pruned weights per sparse layer and ``"all"``."""
        out: dict[str, float] = {}
        total = kept = 0
        for name, layer in sparse_layers(model).items():
            n = layer.zero_mask.numel()
            a = n - int(layer.zero_mask.sum())
            out[name] = a / n
            total, kept = total + n, kept + a
        out["all"] = kept / total if total else 0.0
        return out

    def owned_fractions(self) -> dict[str, float]:
        """Fraction of all synapses (every layer) owned by the initial network
        (``"initial"``) and by each experience (``"exp<k>"``)."""
        owners = torch.cat([o.reshape(-1) for o in self.owner.values()]) if self.owner else torch.empty(0)
        owners = owners[owners != NO_OWNER].to(torch.long) + 1  # initial -> 0, exp k -> k + 1
        n = owners.numel()
        counts = torch.bincount(owners.cpu(), minlength=self.experience_index + 2).tolist() if n else []
        out = {"initial": counts[0] / n if n else 0.0}
        for k, c in enumerate(counts[1:]):
            out[f"exp{k}"] = c / n
        return out

    def _publish(self, strategy, name: str, value: float, x: int) -> None:
        evaluator = getattr(strategy, "evaluator", None)
        if self.log_metrics and evaluator is not None:
            evaluator.publish_metric_value(MetricValue(self, name, float(value), int(x)))

    def _emit_connectivity(self, strategy, layers) -> None:
        x = int(strategy.clock.train_iterations)
        for name, value in self.connectivity(strategy.model).items():
            self._publish(strategy, f"Growth/connectivity/{name or 'model'}", value, x)

    def _emit_experience(self, strategy, stats: dict) -> None:
        t = stats["experience"]
        for kind in ("grown", "frozen", "pruned"):
            per_layer = stats[kind]
            for name, value in per_layer.items():
                self._publish(strategy, f"Growth/{kind}/{name or 'model'}", value, t)
            self._publish(strategy, f"Growth/{kind}/all", sum(per_layer.values()), t)
        for owner, frac in stats["owned_fraction"].items():
            self._publish(strategy, f"Growth/owned_fraction/{owner}", frac, t)

    # ----------------------------------------------------------- checkpoint
    def state_dict(self) -> dict[str, Any]:
        """Ownership (per layer name), experience counter, generator state and
        statistics. The masks are buffers of the model (its ``state_dict``)."""
        return {
            "version": 1,
            "experience_index": self.experience_index,
            "owner": {k: v.detach().cpu().clone() for k, v in self.owner.items()},
            "generator": self.generator.get_state(),
            "history": [dict(h) for h in self.history],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (load the model's own
        ``state_dict`` - the masks - too). Ownership is checked against the
        model's layers at the next experience."""
        if not isinstance(state, dict) or state.get("version") != 1:
            raise ValueError("state must be a dict returned by SynapseGrowthPlugin.state_dict() (version 1)")
        owner = state["owner"]
        for k, v in owner.items():
            if not isinstance(v, Tensor) or v.dtype != torch.int32:
                raise TypeError(f"ownership of layer {k!r} must be an int32 tensor")
        self.experience_index = int(state["experience_index"])
        self.owner = {k: v.clone() for k, v in owner.items()}
        self.generator.set_state(state["generator"])
        self.history = [dict(h) for h in state["history"]]


# ------------------------------------------------------------------ registry
#: hparam key of the sparse FC layers' density in the ``sparse_mlp`` recipe (the
#: seed's ``weight_sparsity_fc``: fraction of NON-zero weights)
DENSITY_KEY = "weight_sparsity_fc"

#: defaults of the ``sparse_growth`` row (merged over ``sparse_mlp``'s hparams)
GROWTH_HPARAMS: dict[str, Any] = {
    "growth_share": 0.5,            # share of the final connectivity that is grown (rest: initial)
    "growth_criterion": "gradient",
    "growth_grad_batches": 4,
    "growth_consolidation": "freeze",
    "growth_lr_scale": 0.1,
    "growth_prune_fraction": 0.0,   # 0: the final parameter count equals sparse_mlp's
}

#: the benchmarks the row is defined for
GROWTH_BENCHMARKS = ("permuted_mnist", "split_mnist_class", "split_mnist_task")


def growth_schedule(final_density: float, n_experiences: int, share: float) -> tuple[float, float]:
    r"""Initial density and per-experience growth fraction that reach
    ``final_density`` after the last experience, growing from the second
    experience on:

    .. math::

        d_0 = d\,(1 - \text{share}), \qquad
        g = \frac{d\,\text{share}}{T - 1}

    (with one experience nothing is grown: :math:`d_0 = d`). The plugin's cap
    ``max_density`` is :math:`d`, so rounding never takes a layer above it.
    """
    d = _fraction(final_density, "final_density", low_open=True, high_open=False)
    share = _fraction(share, "growth_share", low_open=True, high_open=True)
    if isinstance(n_experiences, bool) or not isinstance(n_experiences, Integral) or n_experiences < 1:
        raise ValueError(f"n_experiences must be an integer >= 1, got {n_experiences!r}")
    if n_experiences == 1:
        return d, d * share
    return d * (1.0 - share), d * share / (n_experiences - 1)


def _base_method():
    from .registry import REGISTRY

    if "sparse_mlp" not in REGISTRY:
        raise KeyError("sparse_growth builds on the 'sparse_mlp' method, which is not registered; "
                       "import the module that registers it first")
    return REGISTRY["sparse_mlp"]


def _growth_context(ctx):
    """``ctx`` with the initial density in :data:`DENSITY_KEY`; the final
    density (``sparse_mlp``'s, already merged into ``ctx.hparams`` because the
    row carries ``sparse_mlp``'s hparams and per-benchmark overrides) goes to
    ``growth_final_density``."""
    import dataclasses

    hp = dict(ctx.hparams)
    final = float(hp.get("growth_final_density", hp.get(DENSITY_KEY, 0.1)))
    d0, g = growth_schedule(final, int(ctx.benchmark.n_experiences), float(hp["growth_share"]))
    hp.update({DENSITY_KEY: d0, "growth_final_density": final, "growth_fraction": g})
    return dataclasses.replace(ctx, hparams=hp)


def growth_plugin_from_hparams(hp: dict, seed: int = 0) -> SynapseGrowthPlugin:
    """The plugin of the ``sparse_growth`` row from merged hparams."""
    return SynapseGrowthPlugin(
        grow_fraction=float(hp["growth_fraction"]),
        max_density=float(hp["growth_final_density"]),
        criterion=hp["growth_criterion"],
        grad_batches=int(hp["growth_grad_batches"]),
        consolidation=hp["growth_consolidation"],
        lr_scale=float(hp["growth_lr_scale"]),
        prune_fraction=float(hp["growth_prune_fraction"]),
        seed=int(seed),
    )


def register_sparse_growth():
    """Register the ``sparse_growth`` row of Table 1 when
    ``avalanche_sparse.models.SparseMLP`` exists; return the ``Method``, or
    ``None`` (no error) when it does not.

    The row is ``sparse_mlp``'s recipe (model, optimizer, plugins, strategy
    arguments) built at the initial density :math:`d_0` of
    :func:`growth_schedule`, plus a :class:`SynapseGrowthPlugin` that grows
    back to ``sparse_mlp``'s density by the last experience (cap = that
    density, no pruning): equal final connectivity of the sparse layers."""
    try:
        from avalanche_sparse.models import SparseMLP  # noqa: F401
    except ImportError:
        return None
    from .registry import REGISTRY, Method, register

    if "sparse_growth" in REGISTRY:
        return REGISTRY["sparse_growth"]

    def model(ctx):
        return _base_method().model(_growth_context(ctx))

    def optimizer(model_, ctx):
        return _base_method().optimizer(model_, _growth_context(ctx))

    def plugins(ctx):
        gctx = _growth_context(ctx)
        return list(_base_method().plugins(gctx)) + [growth_plugin_from_hparams(gctx.hparams, ctx.seed)]

    def strategy_kwargs(ctx):
        return _base_method().strategy_kwargs(_growth_context(ctx))

    return register(Method(
        name="sparse_growth",
        description="sparse MLP that grows synapses for each new experience (gradient criterion) "
                    "and freezes those of earlier ones, up to sparse_mlp's connectivity",
        model=model,
        optimizer=optimizer,
        plugins=plugins,
        strategy="avalanche.training.Naive",
        strategy_kwargs=strategy_kwargs,
        # sparse_mlp's settings (defaults and per-benchmark, e.g. the seed's
        # protocols) under the growth defaults: the grid merges them as for
        # any row, twins (Fashion-MNIST) included
        hparams={**_base_method().hparams, **GROWTH_HPARAMS},
        hparams_by_benchmark=dict(_base_method().hparams_by_benchmark),
        benchmarks=GROWTH_BENCHMARKS,
    ))


register_sparse_growth()
