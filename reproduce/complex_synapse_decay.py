"""How a single memory decays in a complex synapse versus a simple one.

Made with::

    python reproduce/complex_synapse_decay.py

(defaults: ``--n-beakers 6 --alpha 2 --beta 5000 --steps 50000 --noise 0.05
--synapses 2000 --burn-in 20000 --seed 0``), which writes
``reproduce/results/complex_synapse_decay.png`` and
``reproduce/results/complex_synapse_decay.csv``.

Protocol. Every synapse starts at 0 with all its beakers at 0 (one optimizer
step with a zero gradient creates the beakers there). Left panel: a memory is
stored by displacing the visible weight by +1, then the optimizer keeps
stepping with zero gradients; the visible weight and every beaker are shown.
Right panel: ``--synapses`` synapses first receive ``--burn-in`` steps of
independent Gaussian gradients of standard deviation ``--noise`` (other,
random "memories", until their fluctuations are about stationary); then the
memory (+1 on every visible weight) is stored and the noise goes on. Plotted
is the memory signal over the synaptic noise, ``mean(w) / sd(w)`` across the
synapses; the grey line ``1/sqrt(synapses)`` is the level reached by chance.
All runs use
:class:`avalanche_sparse.optim.ComplexSynapseSGD` with ``lr=1`` and
``timescale="iterations"``, so ``alpha`` and ``beta`` are iteration counts.
The references are single-beaker synapses (``n_beakers=1``: exponential decay
towards zero) with timescale ``alpha`` and with timescale ``beta``. The chain
follows the fast one at first, then decays roughly as a power law of time
(about ``t**-0.5`` here) until its slowest timescale ``beta`` cuts it off.
Under noise, the fast single beaker starts with a high signal-to-noise ratio
but forgets within a few steps; the slow one keeps its ratio for thousands of
steps, but that ratio is low from the start because its weights wander
widely; the chain starts close to the fast one and then loses its ratio
gradually, as a power law, rather than all at once: the trade-off between
initial strength and lifetime that Benna & Fusi (2016) analyse.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from avalanche_sparse.optim import ComplexSynapseSGD, beaker_chain  # noqa: E402

__all__ = ["simulate", "main"]

RESULTS = Path(__file__).resolve().parent / "results"


def _log_times(steps: int, points: int = 120) -> list[int]:
    grid = torch.logspace(0, torch.log10(torch.tensor(float(steps))).item(), points)
    decades = {10**k for k in range(len(str(steps))) if 10**k <= steps}
    return sorted({int(round(v)) for v in grid.tolist()} | decades)


def simulate(
    n_beakers: int = 6,
    alpha: float = 2.0,
    beta: float = 5000.0,
    steps: int = 50_000,
    noise: float = 0.05,
    synapses: int = 2000,
    burn_in: int = 20_000,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Run the protocol of the module docstring.

    :returns: columns of equal length: ``t`` (steps since the memory was
        stored), ``w`` and ``u2``.. ``u<n>`` (zero gradients, the chain),
        ``exp_alpha`` / ``exp_beta`` (zero gradients, single beakers), and
        ``noise_chain`` / ``noise_exp_alpha`` / ``noise_exp_beta``
        (``mean(w) / sd(w)`` across synapses under gradient noise).
    """
    g = torch.Generator().manual_seed(seed)
    specs = [  # name, n_beakers, alpha, beta, number of synapses
        ("chain", n_beakers, alpha, beta, 1),
        ("exp_alpha", 1, alpha, alpha, 1),
        ("exp_beta", 1, alpha, beta, 1),
        ("noise_chain", n_beakers, alpha, beta, synapses),
        ("noise_exp_alpha", 1, alpha, alpha, synapses),
        ("noise_exp_beta", 1, alpha, beta, synapses),
    ]
    params = {name: torch.nn.Parameter(torch.zeros(k, dtype=torch.float64)) for name, _, _, _, k in specs}
    opt = ComplexSynapseSGD(
        [{"params": [params[name]], "n_beakers": n, "alpha": a, "beta": b} for name, n, a, b, _ in specs],
        lr=1.0,
        timescale="iterations",
        n_beakers=n_beakers,
        alpha=alpha,
        beta=beta,
    )
    for p in params.values():
        p.grad = torch.zeros_like(p)
    opt.step()  # the beakers now exist, at 0
    noisy = {name: p for name, p in params.items() if name.startswith("noise")}
    for _ in range(burn_in):  # the zero-gradient synapses stay at 0
        for p in noisy.values():
            p.grad = noise * torch.randn(p.shape, generator=g, dtype=p.dtype)
        opt.step()
    with torch.no_grad():
        for p in params.values():
            p.add_(1.0)  # store the memory in the visible weights only

    record = set(_log_times(steps))
    cols: dict[str, list[float]] = {"t": []}
    names = ["w"] + [f"u{k}" for k in range(2, n_beakers + 1)]
    for key in names + ["exp_alpha", "exp_beta", "noise_chain", "noise_exp_alpha", "noise_exp_beta"]:
        cols[key] = []
    for p in params.values():
        p.grad = torch.zeros_like(p)
    for t in range(1, steps + 1):
        for p in noisy.values():
            p.grad = noise * torch.randn(p.shape, generator=g, dtype=p.dtype)
        opt.step()
        if t in record:
            cols["t"].append(float(t))
            levels = opt.beakers(params["chain"])[:, 0]
            for key, v in zip(names, levels.tolist()):
                cols[key].append(v)
            for key in ("exp_alpha", "exp_beta"):
                cols[key].append(float(params[key].detach()[0]))
            for key in ("noise_chain", "noise_exp_alpha", "noise_exp_beta"):
                w = params[key].detach()
                cols[key].append(float(w.mean() / w.std()))
    return cols


def _write_csv(cols: dict[str, list[float]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", newline="") as fh:
        w = csv.writer(fh)
        keys = list(cols)
        w.writerow(keys)
        for row in zip(*(cols[k] for k in keys)):
            w.writerow([f"{v:.6g}" for v in row])
    os.replace(tmp, path)


def _plot(cols: dict[str, list[float]], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = cols["t"]
    chain = beaker_chain(args.n_beakers, args.alpha, args.beta)
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.9))
    ax = axes[0]
    beakers = ["w"] + [f"u{k}" for k in range(2, args.n_beakers + 1)]
    colors = plt.cm.viridis([i / max(len(beakers) - 1, 1) for i in range(len(beakers))])
    for key, c in zip(beakers, colors):
        ys = [y if y > 0 else float("nan") for y in cols[key]]
        label = "visible weight w" if key == "w" else f"beaker {key[1:]}"
        ax.loglog(t, ys, color=c, lw=2.2 if key == "w" else 1.1, label=label)
    for key, style, tau in (("exp_alpha", ":", args.alpha), ("exp_beta", "--", args.beta)):
        ys = [y if y > 0 else float("nan") for y in cols[key]]
        ax.loglog(t, ys, "k" + style, lw=1.2, label=f"1 beaker, tau={tau:g}")
    t0 = t[len(t) // 3]
    w0 = cols["w"][len(t) // 3]
    ax.loglog(t, [w0 * (x / t0) ** -0.5 for x in t], color="0.6", lw=0.8, label="~ t^-1/2")
    ax.set_title("zero gradients")
    ax.set_xlabel("steps since the memory was stored")
    ax.set_ylabel("level")
    ax.set_ylim(1e-4, 1.5)
    ax.legend(fontsize=7, loc="lower left", ncol=2)

    ax = axes[1]
    for key, style, label in (
        ("noise_chain", "-", f"{args.n_beakers} beakers"),
        ("noise_exp_alpha", ":", f"1 beaker, tau={args.alpha:g}"),
        ("noise_exp_beta", "--", f"1 beaker, tau={args.beta:g}"),
    ):
        ys = [y if y > 0 else float("nan") for y in cols[key]]
        chain_line = key == "noise_chain"
        ax.loglog(t, ys, ("C3" if chain_line else "k") + style, lw=1.6 if chain_line else 1.2, label=label)
    ax.axhline(args.synapses**-0.5, color="0.6", lw=0.8, label="chance, 1/sqrt(synapses)")
    ax.set_title(f"gradient noise sd {args.noise:g}, {args.synapses} synapses")
    ax.set_xlabel("steps since the memory was stored")
    ax.set_ylabel("signal / noise, mean(w) / sd(w)")
    ax.set_yscale("log")
    ax.set_ylim(1e-3, 30)
    ax.legend(fontsize=7, loc="lower left")
    taus = ", ".join(f"{x:.3g}" for x in chain.timescales)
    fig.suptitle(
        f"ComplexSynapseSGD, lr=1, timescale='iterations'; beaker timescales {taus}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-beakers", type=int, default=6)
    ap.add_argument("--alpha", type=float, default=2.0)
    ap.add_argument("--beta", type=float, default=5000.0)
    ap.add_argument("--steps", type=int, default=50_000)
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--synapses", type=int, default=2000)
    ap.add_argument("--burn-in", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "complex_synapse_decay.png")
    args = ap.parse_args(argv)
    if args.n_beakers < 2:
        ap.error("--n-beakers must be >= 2 (the comparison is against 1 beaker)")
    cols = simulate(
        args.n_beakers, args.alpha, args.beta, args.steps, args.noise, args.synapses, args.burn_in, args.seed
    )
    _write_csv(cols, args.out.with_suffix(".csv"))
    _plot(cols, args, args.out)
    print(f"wrote {args.out} and {args.out.with_suffix('.csv')}")
    for k in ("w", "exp_alpha", "exp_beta", "noise_chain", "noise_exp_alpha", "noise_exp_beta"):
        pick = {int(t): v for t, v in zip(cols["t"], cols[k])}
        print(k, " ".join(f"t={t}:{pick[t]:.3g}" for t in (10, 100, 1000, 10000) if t in pick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
