"""DendriticMLP: structure, init, prototype and one-hot contexts, bad input."""
from __future__ import annotations

import math

import pytest
import torch
from avalanche.models import MultiTaskModule, avalanche_forward
from torch import nn

from avalanche_sparse.layers import DendriticLayer, KWinners, SparseWeights
from avalanche_sparse.models import MLP, DendriticMLP, modified_init_mlp


def small(**kw):
    args = dict(input_size=12, output_size=10, hidden_sizes=[40, 30], num_segments=3, dim_context=12,
                kw_percent_on=0.1, weight_sparsity=0.5, seed=0)
    args.update(kw)
    return DendriticMLP(**args)


def test_structure_follows_the_paper():
    m = DendriticMLP(hidden_sizes=[64, 32], num_segments=4, seed=0)
    assert isinstance(m, MultiTaskModule)
    assert all(isinstance(layer, DendriticLayer) for layer in m.hidden_layers)
    assert all(isinstance(a, KWinners) and a.k_inference_factor == 1.0 and a.boost_strength_value == 0.0
               for a in m.activations)
    assert isinstance(m.classifier, SparseWeights) and m.classifier.sparsity == 0.5
    assert m.hidden_layers[0].segments.weights.shape == (64, 4, 784)
    # weight_sparsity is the fraction of ZEROS
    assert torch.equal((m.hidden_layers[0].weight != 0).sum(1), torch.full((64,), 392))
    relu = DendriticMLP(hidden_sizes=[16], num_segments=2, kw_percent_on=None)
    assert isinstance(relu.activations[0], nn.ReLU)
    assert isinstance(DendriticMLP(hidden_sizes=[16], num_segments=2, kw_percent_on=0).activations[0], nn.ReLU)


def test_modified_init_bounds():
    m = DendriticMLP(hidden_sizes=[2048, 256], num_segments=2, seed=0)
    w0 = m.hidden_layers[0].weight.abs().max().item()
    w1 = m.hidden_layers[1].weight.abs().max().item()
    wh = m.classifier.weight.abs().max().item()
    wd = m.hidden_layers[0].segment_weights.abs().max().item()
    b0, b1 = 1 / math.sqrt(0.5 * 784), 1 / math.sqrt(0.05 * 0.5 * 2048)
    assert 0.95 * b0 < w0 <= b0 and abs(b0 - 0.0505) < 1e-4
    assert 0.9 * b1 < w1 <= b1 and abs(b1 - 0.1398) < 1e-4
    bh = 1 / math.sqrt(0.05 * 0.5 * 256)
    assert 0.8 * bh < wh <= bh
    assert 0.95 * 0.1129 < wd <= 1 / math.sqrt(0.1 * 784)


def test_prototype_training_uses_the_given_task_and_matches_manual_forward():
    torch.manual_seed(0)
    m = small()
    protos = torch.randn(2, 12)
    for t in range(2):
        m.update_prototype(t, protos[t] * 4, 4)
    assert torch.allclose(m.prototypes, protos)
    m.train()
    m.context_task = 1
    x = torch.randn(5, 12)
    out = m(x.view(5, 3, 4))  # any input shape: flattened
    # manual: every sample gets prototype 1
    h = x
    for layer, act in zip(m.hidden_layers, m.activations):
        h = act(layer(h, protos[1].expand(5, 12)))
    assert torch.allclose(out, m.classifier(h), atol=1e-5)
    assert m.last_task_ids.tolist() == [1] * 5


def test_prototype_eval_infers_the_nearest_prototype():
    m = small()
    protos = torch.stack([torch.full((12,), -3.0), torch.zeros(12), torch.full((12,), 3.0)])
    for t in range(3):
        m.update_prototype(t, protos[t], 1)
    x = torch.cat([protos[2] + 0.1, protos[0] - 0.2, protos[1] + 0.3]).view(3, 12)
    m.eval()
    out = m(x)
    assert m.last_task_ids.tolist() == [2, 0, 1]
    assert torch.equal(m.infer_tasks(x), m.last_task_ids)
    # same as evaluating with the inferred prototypes given per sample
    h = x
    for layer, act in zip(m.hidden_layers, m.activations):
        h = act(layer(h, protos[[2, 0, 1]]))
    assert torch.allclose(out, m.classifier(h), atol=1e-5)
    # evaluation ignores context_task and task labels: no task label at test time
    m.context_task = 0
    m(x, torch.zeros(3, dtype=torch.long))
    assert m.last_task_ids.tolist() == [2, 0, 1]


def test_prototype_is_the_running_mean_of_all_inputs_of_its_task():
    m = small()
    a, b = torch.randn(6, 12), torch.randn(4, 12)
    m.update_prototype(0, a.sum(0), 6)
    m.update_prototype(0, b.sum(0), 4)
    assert torch.allclose(m.prototypes[0], torch.cat([a, b]).mean(0), atol=1e-6)
    assert m.prototype_counts.tolist() == [10]
    with pytest.raises(ValueError, match=r"task_id must be an int in \[0, 1\]"):
        m.update_prototype(3, a.sum(0), 6)
    with pytest.raises(ValueError, match="count must be an int >= 1"):
        m.update_prototype(1, a.sum(0), 0)
    with pytest.raises(ValueError, match="dim_context=12"):
        m.update_prototype(1, torch.zeros(13), 1)


def test_eval_before_any_prototype_is_a_clear_error():
    m = small().eval()
    with pytest.raises(RuntimeError, match="no prototypes yet"):
        m(torch.randn(2, 12))


def test_training_without_a_task_is_a_clear_error():
    m = small().train()
    with pytest.raises(RuntimeError, match="needs context_task"):
        m(torch.randn(2, 12))
    m.update_prototype(0, torch.zeros(12), 1)
    m.context_task = 2
    with pytest.raises(RuntimeError, match="context_task=2 has no prototype"):
        m(torch.randn(2, 12))


def test_onehot_context_from_labels_or_context_task():
    torch.manual_seed(1)
    m = small(context="onehot", dim_context=4, context_percent_on=0.25)
    x = torch.randn(3, 12)
    labels = torch.tensor([0, 3, 1])
    out = m(x, labels)
    assert m.last_task_ids.tolist() == [0, 3, 1]
    h = x
    for layer, act in zip(m.hidden_layers, m.activations):
        h = act(layer(h, torch.eye(4)[labels]))
    assert torch.allclose(out, m.classifier(h), atol=1e-5)
    m.context_task = 2
    m(x, labels)
    assert m.last_task_ids.tolist() == [2, 2, 2]
    m.context_task = None
    assert torch.allclose(avalanche_forward(m, x, labels), out, atol=1e-6)


def test_onehot_task_label_outside_the_known_tasks():
    m = small(context="onehot", dim_context=4)
    with pytest.raises(ValueError, match=r"task label 4 is outside the known tasks \[0, 4\)"):
        m(torch.randn(2, 12), torch.tensor([1, 4]))
    with pytest.raises(ValueError, match="outside the known tasks"):
        m(torch.randn(2, 12), torch.tensor([-1, 0]))
    m.context_task = 7
    with pytest.raises(ValueError, match="task label 7"):
        m(torch.randn(2, 12))
    m.context_task = None
    with pytest.raises(ValueError, match="needs a task id"):
        m(torch.randn(2, 12))


def test_no_segments_is_a_sparse_mlp_without_context():
    m = small(num_segments=0)
    assert not any(isinstance(layer, DendriticLayer) for layer in m.hidden_layers)
    assert all(isinstance(layer, SparseWeights) for layer in m.hidden_layers)
    assert m(torch.randn(2, 12)).shape == (2, 10)
    m.eval()
    assert m(torch.randn(2, 12)).shape == (2, 10)  # no prototype needed
    assert m.last_winning_segments() == []


def test_state_dict_round_trip_with_prototypes():
    m = small()
    for t in range(3):
        m.update_prototype(t, torch.randn(12), 2)
    fresh = small()
    fresh.load_state_dict(m.state_dict())
    assert torch.equal(fresh.prototypes, m.prototypes) and fresh.prototype_counts.tolist() == [2, 2, 2]
    x = torch.randn(4, 12)
    assert torch.allclose(fresh.eval()(x), m.eval()(x))


def test_record_activity_and_winners():
    m = small()
    m.update_prototype(0, torch.zeros(12), 1)
    m.update_prototype(1, torch.ones(12) * 5, 1)
    m.eval()
    m.record_activity = True
    m(torch.randn(6, 12))
    assert [h.shape for h in m.last_hidden] == [(6, 40), (6, 30)]
    assert all((h != 0).sum(1).max() <= 4 for h in m.last_hidden[:1])  # k = 4 of 40
    win = m.last_winning_segments()
    assert [w.shape for w in win] == [(6, 40), (6, 30)] and int(win[0].max()) < 3


def test_gradients_flow_to_weights_and_segments():
    m = small()
    m.update_prototype(0, torch.randn(12) * 3, 1)
    m.context_task = 0
    loss = nn.functional.cross_entropy(m(torch.randn(8, 12)), torch.randint(0, 10, (8,)))
    loss.backward()
    assert m.hidden_layers[0].segment_weights.grad.abs().sum() > 0
    assert m.hidden_layers[0].weight.grad.abs().sum() > 0
    assert m.prototypes.grad is None and "prototypes" not in dict(m.named_parameters())


def test_modified_init_mlp():
    mlp = modified_init_mlp(MLP(784, 10, hidden_sizes=(2048, 2048)))
    lins = [m for m in mlp.modules() if isinstance(m, nn.Linear)]
    assert lins[0].weight.abs().max() <= 1 / math.sqrt(784)
    assert lins[1].weight.abs().max() > 0.95 / math.sqrt(0.5 * 2048)
    assert lins[2].weight.abs().max() <= 1 / math.sqrt(0.5 * 2048)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_segments=-1), "num_segments must be an int >= 0"),
        (dict(dim_context=10), "dim_context must equal input_size"),
        (dict(context="task"), "context must be one of"),
        (dict(weight_sparsity=1.0), r"weight_sparsity must be in \[0, 1\)"),
        (dict(dendrite_sparsity=-0.5), r"dendrite_sparsity must be in \[0, 1\)"),
        (dict(kw_percent_on=1.5), r"kw_percent_on must be in \[0, 1\)"),
        (dict(hidden_sizes=[]), "hidden_sizes must be a non-empty list"),
        (dict(hidden_sizes=[10, 0]), "hidden_sizes must be a non-empty list"),
        (dict(context_percent_on=0.0), r"context_percent_on must be in \(0, 1\]"),
        (dict(init="xavier"), "init must be"),
        (dict(input_size=0), "input_size must be an int >= 1"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        small(**kwargs)


def test_bad_input_size():
    m = small()
    m.update_prototype(0, torch.zeros(12), 1)
    m.context_task = 0
    with pytest.raises(ValueError, match="input_size=12"):
        m(torch.randn(2, 13))
