"""reproduce/dendrites_reference_check.py: the shared loop and the reference loader.

The real reference (nupic.research + nupic.torch) is not installed in CI; a
fake checkout with the same layout checks that only the module files are
imported (the package ``__init__`` files raise here).
"""
from __future__ import annotations

import sys

import pytest
import torch

from avalanche_sparse.layers import rezero_weights
from avalanche_sparse.models import DendriticMLP
from reproduce import dendrites_reference_check as R


def _synthetic_tasks(n_tasks=2, n=400, d=784, seed=0):
    """Two linearly separable classes; each task is a pixel permutation."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(2, d, generator=g) * 2.0

    def draw(k):
        y = torch.randint(0, 2, (k,), generator=g)
        return centers[y] + torch.randn(k, d, generator=g), y

    xtr, ytr = draw(n)
    xte, yte = draw(200)
    perms = [torch.arange(d)] + [torch.randperm(d, generator=g) for _ in range(n_tasks - 1)]
    return xtr, ytr, xte, yte, perms


def _small_ours(n_tasks):
    model = DendriticMLP(784, 2, hidden_sizes=[64], num_segments=n_tasks, kw_percent_on=0.25, seed=0)

    def forward(x, task):
        model.context_task = task
        return model(x)

    return model, forward, lambda p: model.update_prototype(model.num_prototypes, p, 1), \
        lambda: rezero_weights(model)


def test_run_sequence_scores_every_seen_task_and_learns():
    torch.manual_seed(0)
    model, forward, add, rezero = _small_ours(2)
    hist = R.run_sequence(model, forward, add, rezero, _synthetic_tasks(), epochs=2, lr=1e-3,
                          batch_size=32, log=lambda s: None)
    assert [len(h) for h in hist] == [1, 2]
    assert all(0.0 <= a <= 100.0 for h in hist for a in h)
    # separable data: far above chance (50 %) on both tasks
    assert min(hist[-1]) > 90.0
    assert model.num_prototypes == 2
    # the nearest prototype routes each task's test inputs to that task
    xte, perms = _synthetic_tasks()[2], _synthetic_tasks()[4]
    model.eval()
    for t, perm in enumerate(perms):
        assert (model.infer_tasks(xte[:, perm]) == t).float().mean() > 0.95
    # pruned weights stayed zero through training
    mask = model.hidden_layers[0].linear.zero_mask
    assert model.hidden_layers[0].linear.weight[mask].abs().max() == 0


def test_run_sequence_stops_on_nan_loss():
    model, forward, add, rezero = _small_ours(1)
    data = _synthetic_tasks(n_tasks=1)
    bad = lambda x, t: forward(x, t) * float("nan")  # noqa: E731
    with pytest.raises(FloatingPointError, match="task 0"):
        R.run_sequence(model, bad, add, rezero, data, log=lambda s: None)


def _nupic_names():
    return [n for n in sys.modules if n == "nupic" or n.startswith("nupic.")]


@pytest.fixture
def clean_nupic(monkeypatch):
    """No nupic modules during the test; whatever was there before comes back."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    saved = {n: sys.modules.pop(n) for n in _nupic_names()}
    yield
    for n in _nupic_names():
        del sys.modules[n]
    sys.modules.update(saved)


def _fake_checkouts(root):
    torch_src = root / "nupic.torch" / "src" / "nupic"
    (torch_src / "torch" / "modules").mkdir(parents=True)
    (torch_src / "__init__.py").write_text("")
    (torch_src / "torch" / "__init__.py").write_text("")
    (torch_src / "torch" / "modules" / "__init__.py").write_text("MARK = 'fake nupic.torch'\n")
    dend = root / "nupic.research" / R._DENDRITES
    (dend / "modules").mkdir(parents=True)
    boom = "raise ImportError('heavy package __init__ must not run')\n"
    (dend / "__init__.py").write_text(boom)
    (dend / "modules" / "__init__.py").write_text(boom)
    (dend.parents[1] / "__init__.py").write_text(boom)  # nupic/research/__init__.py
    # the real module imports siblings and the dendrites ``functional`` subpackage
    (dend / "functional").mkdir()
    (dend / "functional" / "__init__.py").write_text("GATE = 'functional'\n")
    (dend / "modules" / "dendritic_layers.py").write_text(
        "from nupic.research.frameworks.dendrites import functional as F\n"
        "LAYER = F.GATE + ' layer'\n")
    (dend / "modules" / "dendritic_mlp.py").write_text(
        "from nupic.torch.modules import MARK\n"
        "from .dendritic_layers import LAYER\n"
        "class DendriticMLP:\n    mark = MARK\n    layer = LAYER\n")
    return root / "nupic.torch", root / "nupic.research"


def test_load_reference_imports_only_the_module_files(tmp_path, clean_nupic):
    nt, nr = _fake_checkouts(tmp_path)
    cls = R.load_reference_mlp(nt, nr)
    assert cls.__name__ == "DendriticMLP" and cls.mark == "fake nupic.torch"
    assert cls.layer == "functional layer"


def test_load_reference_without_nupic_torch_names_the_flag(tmp_path, clean_nupic, monkeypatch):
    _, nr = _fake_checkouts(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "nupic" not in p])
    with pytest.raises(ImportError, match="--nupic-torch"):
        R.load_reference_mlp(None, nr)


def test_load_reference_names_the_bad_argument(tmp_path, clean_nupic):
    nt, _ = _fake_checkouts(tmp_path)
    with pytest.raises(FileNotFoundError, match="--nupic-research"):
        R.load_reference_mlp(nt, tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="--nupic-torch"):
        R.load_reference_mlp(tmp_path / "nowhere", None)


def test_reference_model_gets_the_prototype_config_and_contexts(clean_nupic, monkeypatch):
    """PROTOTYPE_<n> arguments; the task's prototype in training, the nearest at test time."""
    import types

    for name in ("nupic", "nupic.torch"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    mods = types.ModuleType("nupic.torch.modules")
    mods.rezero_weights = lambda m: None
    monkeypatch.setitem(sys.modules, "nupic.torch.modules", mods)
    seen = {}

    class Fake(torch.nn.Module):
        def __init__(self, *args, **kwargs):
            super().__init__()
            seen["args"], seen["kwargs"] = args, kwargs

        def forward(self, x, context):
            seen["context"] = context
            return x[:, :10]

    model, forward, add, _ = R._reference_model(Fake, 3)
    assert seen["args"] == (784, 10, [2048, 2048], 3, 784, True)
    assert seen["kwargs"] == dict(kw_percent_on=0.05, context_percent_on=0.1,
                                  dendrite_weight_sparsity=0.0, weight_sparsity=0.5)
    protos = torch.eye(3, 784) * 5
    for p in protos:
        add(p)
    x = protos[[2, 0, 1, 2]] + 0.1
    forward(x, 1)
    assert torch.equal(seen["context"], protos[[1, 1, 1, 1]])
    forward(x, None)
    assert torch.equal(seen["context"], protos[[2, 0, 1, 2]])


def test_task_data_normalises_and_starts_with_plain_mnist(monkeypatch):
    import benchmarks.data

    x = torch.randint(0, 256, (6, 28, 28), dtype=torch.uint8)
    y = torch.arange(6)
    monkeypatch.setattr(benchmarks.data, "load_mnist", lambda root=None: (x, y, x[:2], y[:2]))
    xtr, ytr, xte, yte, perms = R.task_data(3)
    assert xtr.shape == (6, 784) and xte.shape == (2, 784) and len(perms) == 3
    assert torch.equal(perms[0], torch.arange(784))
    assert not torch.equal(perms[1], perms[2])
    expect = (x[0].reshape(-1).float() / 255 - R.MNIST_MEAN) / R.MNIST_STD
    assert torch.allclose(xtr[0], expect)


def test_main_rejects_zero_tasks(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        R.main(["--models", "ours", "--tasks", "0", "--out", str(tmp_path / "x.json")])
    assert exc.value.code == 2
    assert "--tasks" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
