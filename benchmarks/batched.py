"""Minibatch-at-a-time fetching for tensor-backed Avalanche datasets.

Avalanche builds every training sample through its dataset layers
(``AvalancheDataset`` -> nested ``FlatData`` subsets and concatenations ->
transform groups -> data attributes such as the task label) and then lets
``default_collate`` stack the samples into a minibatch. For datasets whose
leaves are in-memory ``TensorDataset`` s and whose transform groups are all
empty -- what :mod:`avalanche_sparse.benchmarks.scenarios` builds -- that
per-sample walk (about 25 us a sample here) is pure bookkeeping: the
minibatch is a gather of rows from a few tensors.

:class:`BatchedTensorView` resolves, once, every position of a list of
Avalanche datasets to ``(leaf tensor, row)`` by walking the same
``FlatData`` index structure Avalanche walks per sample (vectorised with
numpy), materialises the ``use_in_getitem`` data attributes (task labels) as
int64 tensors, and then serves a whole minibatch with one ``index_select``
per field through ``__getitems__`` -- the hook torch's ``DataLoader`` fetcher
calls when a dataset defines it. The result is exactly what
``default_collate([dataset[i] for i in indices])`` gives (same fields, same
order, same dtypes and shapes), which the tests check.

Anything the view cannot prove equivalent -- a non-empty transform in the
active group, a leaf that is not a plain ``TensorDataset``, a dataset class
overriding ``__getitem__``, a non-integer attribute -- raises
:class:`NotTensorBacked`, and callers keep Avalanche's own per-sample path.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset, TensorDataset

__all__ = ["NotTensorBacked", "BatchedTensorView"]


class NotTensorBacked(ValueError):
    """The datasets cannot be served as batched tensor gathers (the reason is
    the message); use Avalanche's per-sample path instead."""


def _avalanche_types():
    from avalanche.benchmarks.utils.data import AvalancheDataset, _FlatDataWithTransform
    from avalanche.benchmarks.utils.flat_data import (
        ConstantSequence, FlatData, LazyIndices, LazyRange,
    )

    return AvalancheDataset, _FlatDataWithTransform, FlatData, ConstantSequence, LazyIndices, LazyRange


def _index_array(indices, length: int) -> np.ndarray:
    """``FlatData._indices`` (None, list, LazyIndices, LazyRange...) as int64 array."""
    _, _, _, _, LazyIndices, LazyRange = _avalanche_types()
    if indices is None:
        return np.arange(length, dtype=np.int64)
    if isinstance(indices, LazyRange):
        # LazyRange.__getitem__(i) == start + offset + i
        return np.arange(len(indices), dtype=np.int64) + (indices._start + indices._offset)
    if isinstance(indices, LazyIndices):
        indices._to_eager()
        return np.asarray(indices._eager_list, dtype=np.int64)
    if isinstance(indices, range):
        return np.arange(indices.start, indices.stop, indices.step, dtype=np.int64)
    return np.asarray(indices, dtype=np.int64).reshape(-1)


def _group_transform(groups, group_name: str):
    """The transform ``groups`` applies in group ``group_name`` (None: nothing)."""
    if groups is None:
        return None
    tg = groups.transform_groups
    if hasattr(tg, "default_factory"):
        return tg[group_name]  # what Avalanche's own lookup returns (and inserts)
    return tg.get(group_name)


def _mapping_of(fn) -> Optional[Tensor]:
    """The table of Avalanche's class-mapping target transform
    ``partial(lookup, class_mapping)``, else None."""
    import functools

    from avalanche.benchmarks.utils.classification_dataset import lookup

    if (isinstance(fn, functools.partial) and fn.func is lookup and len(fn.args) == 1
            and not fn.keywords):
        table = fn.args[0]
        if isinstance(table, Tensor):
            table = table.tolist()
        if isinstance(table, (list, tuple, np.ndarray)):
            arr = np.asarray(table)
            if arr.ndim == 1 and arr.size and arr.dtype.kind in "iu":
                return torch.from_numpy(arr.astype(np.int64))
    return None


def _label_maps(t) -> list[Tensor]:
    """The class-mapping tables a transform applies to the target (field 1),
    in order; :class:`NotTensorBacked` for anything else it does."""
    from avalanche.benchmarks.utils.transforms import MultiParamCompose, TupleTransform

    if t is None:
        return []
    if type(t) is MultiParamCompose:
        return [m for sub in t.transforms for m in _label_maps(sub)]
    if type(t) is TupleTransform:
        maps = []
        for pos, fn in enumerate(t.transforms):
            if fn is None:
                continue
            table = _mapping_of(fn) if pos == 1 else None
            if table is None:
                raise NotTensorBacked(f"a per-sample transform is active ({fn!r})")
            maps.append(table)
        return maps
    raise NotTensorBacked(f"a per-sample transform is active ({t!r})")


class _Resolver:
    """Maps every position of a ``FlatData`` tree to ``(leaf id, row in leaf,
    label-map id)``.

    :param group_name: active transform group (its transforms must be empty
        or class mappings), or None for attribute trees (no transforms).
    :param is_leaf: ``obj -> bool``, which non-FlatData nodes are accepted.
    """

    def __init__(self, group_name: Optional[str], is_leaf) -> None:
        self.group_name = group_name
        self.is_leaf = is_leaf
        self.leaves: list = []
        self.maps: list[Tensor] = []  # label-map id -> table
        self._leaf_ids: dict[int, int] = {}
        self._composed: dict[tuple, int] = {}
        self._memo: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def leaf_id(self, leaf) -> int:
        key = id(leaf)
        if key not in self._leaf_ids:
            self._leaf_ids[key] = len(self.leaves)
            self.leaves.append(leaf)
        return self._leaf_ids[key]

    def _then(self, first: int, table: Tensor) -> int:
        """Id of map ``first`` (-1: none) followed by ``table``."""
        key = (first, tuple(table.tolist()))
        if key not in self._composed:
            self.maps.append(table if first < 0 else table[self.maps[first]])
            self._composed[key] = len(self.maps) - 1
        return self._composed[key]

    def resolve(self, node) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        _, FlatDataWT, FlatData, _, _, _ = _avalanche_types()
        key = id(node)
        if key in self._memo:
            return self._memo[key]
        if type(node) not in (FlatData, FlatDataWT):
            if not self.is_leaf(node):
                raise NotTensorBacked(f"unsupported dataset node {type(node).__name__}")
            n = len(node)
            out = (np.full(n, self.leaf_id(node), dtype=np.int64), np.arange(n, dtype=np.int64),
                   np.full(n, -1, dtype=np.int64))
            self._memo[key] = out
            return out
        maps: list[Tensor] = []
        if type(node) is FlatDataWT and self.group_name is not None:
            for groups in (node._frozen_transform_groups, node._transform_groups):
                maps += _label_maps(_group_transform(groups, self.group_name))
        n = len(node)
        idx = _index_array(node._indices, n)
        children = node._datasets
        if len(children) == 1:
            which = np.zeros(n, dtype=np.int64)
            local = idx
        else:
            cum = np.asarray(node._cumulative_sizes, dtype=np.int64)
            which = np.searchsorted(cum, idx, side="right")
            local = idx - np.concatenate(([0], cum))[which]
        leaf = np.empty(n, dtype=np.int64)
        row = np.empty(n, dtype=np.int64)
        lmap = np.empty(n, dtype=np.int64)
        for k in np.unique(which).tolist():
            m = which == k
            c_leaf, c_row, c_map = self.resolve(children[k])
            leaf[m] = c_leaf[local[m]]
            row[m] = c_row[local[m]]
            lmap[m] = c_map[local[m]]
        for table in maps:
            mapped = lmap.copy()
            for u in np.unique(lmap).tolist():
                mapped[lmap == u] = self._then(u, table)
            lmap = mapped
        self._memo[key] = (leaf, row, lmap)
        return leaf, row, lmap


def _is_tensor_leaf(obj) -> bool:
    return (isinstance(obj, TensorDataset) and type(obj).__getitem__ is TensorDataset.__getitem__
            and isinstance(obj.tensors, tuple) and len(obj.tensors) > 0)


def _is_value_leaf(obj) -> bool:
    _, _, _, ConstantSequence, _, _ = _avalanche_types()
    return isinstance(obj, (list, tuple, range, np.ndarray, Tensor, ConstantSequence))


def _value_tensor(leaf) -> Tensor:
    """An attribute leaf (task labels...) as the tensor ``default_collate`` makes."""
    _, _, _, ConstantSequence, _, _ = _avalanche_types()
    if isinstance(leaf, ConstantSequence):
        v = leaf._constant_value
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise NotTensorBacked(f"non-integer constant attribute {v!r}")
        return torch.full((len(leaf),), int(v), dtype=torch.int64)
    if isinstance(leaf, Tensor):
        if leaf.dim() != 1 or leaf.dtype.is_floating_point or leaf.dtype == torch.bool:
            raise NotTensorBacked("attribute tensor must be 1-d integer")
        return leaf
    arr = np.asarray(leaf)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise NotTensorBacked("non-integer attribute values")
    return torch.from_numpy(arr.astype(np.int64))


class BatchedTensorView(Dataset):
    """The concatenation of tensor-backed Avalanche datasets, one minibatch per fetch.

    ``view.__getitems__(indices)`` equals
    ``default_collate([ConcatDataset(datasets)[i] for i in indices])``: the
    ``TensorDataset`` fields (``x``, ``y``) followed by the ``use_in_getitem``
    data attributes (the task label ``t``), each a stacked tensor.
    ``view[i]`` is the stock per-sample element.

    Per-sample scalar fields (labels) and attributes are materialised once as
    vectors over all positions (with Avalanche's class-mapping target
    transforms applied); the other fields (images) are gathered from the leaf
    tensors per minibatch.

    :param datasets: Avalanche datasets (e.g. the ``datasets`` of one of
        Avalanche's multi-dataset loaders), all with the same element layout.
    :raises NotTensorBacked: when that equivalence cannot be guaranteed.
    """

    def __init__(self, datasets: Sequence) -> None:
        AvalancheDataset, FlatDataWT, _, _, _, _ = _avalanche_types()
        datasets = list(datasets)
        if not datasets:
            raise NotTensorBacked("no datasets")
        samples = _Resolver(None, _is_tensor_leaf)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        attr_parts: list[list[Tensor]] = []
        names: Optional[list[str]] = None
        for ds in datasets:
            if not isinstance(ds, AvalancheDataset):
                raise NotTensorBacked(f"{type(ds).__name__} is not an AvalancheDataset")
            if type(ds).__getitem__ is not AvalancheDataset.__getitem__:
                raise NotTensorBacked(f"{type(ds).__name__} overrides __getitem__")
            root = ds._flat_data
            if type(root) is not FlatDataWT:
                raise NotTensorBacked(f"unsupported root {type(root).__name__}")
            samples.group_name = root._transform_groups.current_group
            parts.append(samples.resolve(root))
            attrs = [da for da in ds._data_attributes.values() if da.use_in_getitem]
            if names is None:
                names = [da.name for da in attrs]
            elif names != [da.name for da in attrs]:
                raise NotTensorBacked("datasets have different per-sample attributes")
            attr_parts.append([_attribute_values(da) for da in attrs])
        self._leaves: list[TensorDataset] = samples.leaves
        n_fields = {len(leaf.tensors) for leaf in self._leaves}
        if len(n_fields) != 1:
            raise NotTensorBacked("tensor leaves have different numbers of fields")
        self._n_fields = n_fields.pop()
        for j in range(self._n_fields):
            kinds = {(t.tensors[j].dtype, tuple(t.tensors[j].shape[1:])) for t in self._leaves}
            if len(kinds) != 1:
                raise NotTensorBacked(f"field {j} differs in dtype or shape across leaves")
        leaf = torch.from_numpy(np.concatenate([p[0] for p in parts]))
        row = torch.from_numpy(np.concatenate([p[1] for p in parts]))
        lmap = torch.from_numpy(np.concatenate([p[2] for p in parts]))
        self._leaf, self._row = leaf, row
        self._scalars: dict[int, Tensor] = {}
        for j in range(self._n_fields):
            if self._leaves[0].tensors[j].dim() == 1:
                self._scalars[j] = _gather(leaf, row, [t.tensors[j] for t in self._leaves])
        if bool((lmap >= 0).any()):
            y = self._scalars.get(1)
            if y is None or y.dtype.is_floating_point or y.dtype == torch.bool:
                raise NotTensorBacked("class mapping on a non-integer or non-scalar target")
            if not bool((lmap >= 0).all()) and y.dtype != torch.int64:
                raise NotTensorBacked("class mapping on part of a non-int64 target")
            y = y.to(torch.int64)
            for u in torch.unique(lmap).tolist():
                if u >= 0:
                    m = lmap == u
                    y[m] = samples.maps[u][y[m]]
            self._scalars[1] = y
        self._attrs = [torch.cat([vals[k] for vals in attr_parts]) for k in range(len(names or []))]
        self.attribute_names: list[str] = list(names or [])
        self._concat = ConcatDataset(datasets)

    def __len__(self) -> int:
        return int(self._row.shape[0])

    @property
    def leaves(self) -> tuple[TensorDataset, ...]:
        """The distinct ``TensorDataset`` s the samples come from."""
        return tuple(self._leaves)

    def __getitem__(self, index: int):
        """The per-sample element, through Avalanche's own path."""
        return self._concat[index]

    def __getitems__(self, indices) -> list[Tensor]:
        """The collated minibatch ``[field_0, ..., field_k, attr_0, ...]``."""
        return self.fetch(torch.as_tensor(indices, dtype=torch.int64))

    def fetch(self, idx: Tensor) -> list[Tensor]:
        """Minibatch at positions ``idx`` (1-d int64 tensor)."""
        rows = self._row.index_select(0, idx)
        one = len(self._leaves) == 1
        which = None if one else self._leaf.index_select(0, idx)
        fields = []
        for j in range(self._n_fields):
            if j in self._scalars:
                fields.append(self._scalars[j].index_select(0, idx))
            elif one:
                fields.append(self._leaves[0].tensors[j].index_select(0, rows))
            else:
                fields.append(_gather(which, rows, [t.tensors[j] for t in self._leaves]))
        return fields + [a.index_select(0, idx) for a in self._attrs]


def _gather(which: Tensor, rows: Tensor, tensors: list[Tensor]) -> Tensor:
    """``out[i] = tensors[which[i]][rows[i]]``."""
    if len(tensors) == 1:
        return tensors[0].index_select(0, rows)
    proto = tensors[0]
    out = torch.empty((rows.shape[0], *proto.shape[1:]), dtype=proto.dtype)
    for k in torch.unique(which).tolist():
        pos = torch.nonzero(which == k).flatten()
        out.index_copy_(0, pos, tensors[k].index_select(0, rows.index_select(0, pos)))
    return out


def _attribute_values(da) -> Tensor:
    """A ``use_in_getitem`` data attribute (task labels) as one int64 vector."""
    res = _Resolver(None, _is_value_leaf)
    leaf, row, _ = res.resolve(da.data)
    tensors = [_value_tensor(v).to(torch.int64) for v in res.leaves]
    return _gather(torch.from_numpy(leaf), torch.from_numpy(row), tensors)
