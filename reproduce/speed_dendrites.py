"""Speed of the Active Dendrites Network (Iyer et al. 2022): one training step
of the paper's ``DendriticMLP`` (hidden [2048, 2048], 10 segments, k-WTA 5 %,
50 % weight sparsity, batch 256) against the same network without segments
(``num_segments=0``), interleaved, median of ``repeats``: forward + backward
with the batch sharing one prototype (as in training), forward + backward with
one distinct context per sample (the general case), and a full training step
(+ Adam step + re-zeroing); then an estimate of the CPU time of the full
preset's ``dendrites`` cell from the step time (10 tasks x 3 epochs x 235
steps).

Run through ``python reproduce/speed.py --section dendrites [--repeats N] [--keep-freed-memory] [--out F]``
(``--keep-freed-memory``: glibc keeps freed blocks mapped, as in ``table1.py`` cells).
"""
from __future__ import annotations

import platform
import sys
import time

import torch
from torch import nn

__all__ = ["dendrite_step_times", "dendrites_main"]


def dendrite_step_times(hidden_sizes=(2048, 2048), num_segments: int = 10, batch: int = 256,
                        repeats: int = 5, seed: int = 0) -> dict:
    """Median seconds of forward+backward (and of a full training step) of a
    ``DendriticMLP`` against the same network without segments."""
    import statistics

    from avalanche_sparse.layers import rezero_weights
    from avalanche_sparse.models import DendriticMLP
    from avalanche_sparse.strategies import torch_optimizer

    torch.manual_seed(seed)
    kw = dict(hidden_sizes=list(hidden_sizes), kw_percent_on=0.05, weight_sparsity=0.5, seed=seed)
    nets = {"dendritic": DendriticMLP(784, 10, num_segments=num_segments, **kw),
            "no_segments": DendriticMLP(784, 10, num_segments=0, **kw)}
    protos = torch.randn(num_segments, 784)
    for t in range(num_segments):
        nets["dendritic"].update_prototype(t, protos[t], 1)
    nets["dendritic"].context_task = 0
    # the optimizer the dendrites rows train with (torch's fused Adam)
    opts = {k: torch_optimizer("adam", m.parameters(), lr=5e-4) for k, m in nets.items()}
    x = torch.randn(batch, 784)
    y = torch.randint(0, 10, (batch,))
    loss_fn = nn.CrossEntropyLoss()
    per_sample = torch.randn(batch, 784)
    layers = nets["dendritic"].hidden_layers

    def fwd_bwd(name):
        m = nets[name]
        m.zero_grad(set_to_none=True)
        t = time.perf_counter()
        loss_fn(m(x), y).backward()
        return time.perf_counter() - t

    def fwd_bwd_per_sample():
        m = nets["dendritic"]
        m.zero_grad(set_to_none=True)
        t = time.perf_counter()
        h = x
        for layer, act in zip(layers, m.activations):
            h = act(layer(h, per_sample))
        loss_fn(m.classifier(h), y).backward()
        return time.perf_counter() - t

    def step(name):
        m, opt = nets[name], opts[name]
        opt.zero_grad(set_to_none=True)
        t = time.perf_counter()
        loss_fn(m(x), y).backward()
        opt.step()
        rezero_weights(m)
        return time.perf_counter() - t

    runs = {"dendritic_fwd_bwd_s": lambda: fwd_bwd("dendritic"),
            "no_segments_fwd_bwd_s": lambda: fwd_bwd("no_segments"),
            "dendritic_per_sample_context_fwd_bwd_s": fwd_bwd_per_sample,
            "dendritic_train_step_s": lambda: step("dendritic"),
            "no_segments_train_step_s": lambda: step("no_segments")}
    for f in runs.values():  # warm-up (also builds Adam state)
        f()
    times: dict = {k: [] for k in runs}
    for _ in range(repeats):
        for k, f in runs.items():
            times[k].append(f())
    res = {k: statistics.median(v) for k, v in times.items()}
    res.update(hidden_sizes=list(hidden_sizes), num_segments=num_segments, batch=batch, repeats=repeats,
               segment_params=sum(layer.segment_weights.numel() for layer in layers),
               feedforward_params=sum(p.numel() for p in nets["no_segments"].parameters()))
    res["fwd_bwd_ratio"] = res["dendritic_fwd_bwd_s"] / res["no_segments_fwd_bwd_s"]
    res["train_step_ratio"] = res["dendritic_train_step_s"] / res["no_segments_train_step_s"]
    return res


def dendrites_main(args) -> int:
    from avalanche_sparse.memory import freed_memory_kept

    res = {"threads": torch.get_num_threads(), "torch": torch.__version__,
           "machine": platform.processor() or platform.machine(),
           "keep_freed_memory": freed_memory_kept() is not None}
    res["paper_size"] = dendrite_step_times(repeats=args.repeats)
    # full preset `dendrites` cell: 10 tasks x 3 epochs x ceil(60000 / 256) steps (training only)
    steps = 10 * 3 * -(-60000 // 256)
    res["full_preset_dendrites_steps"] = steps
    res["full_preset_dendrites_train_estimate_h"] = steps * res["paper_size"]["dendritic_train_step_s"] / 3600
    res["quick_size"] = dendrite_step_times(hidden_sizes=(256,), num_segments=3, batch=128,
                                            repeats=max(args.repeats, 10))
    print(f"full preset dendrites cell, training only: {steps} steps, about "
          f"{res['full_preset_dendrites_train_estimate_h']:.1f} h")
    for size in ("paper_size", "quick_size"):
        print(size)
        for k, v in res[size].items():
            print(f"  {k:40s} {v:.4f}" if isinstance(v, float) else f"  {k:40s} {v}")
    if args.out:
        from avalanche_sparse.io import atomic_write_json

        res["command"] = "python reproduce/speed.py " + " ".join(sys.argv[1:])
        atomic_write_json(args.out, res)
    return 0
