"""Turn a validated spec into a ``torch.nn.Module``."""

from __future__ import annotations

from torch import nn

from explorer.spec import DEFAULT_LIMITS, Limits, SpecInfo, pair, validate

__all__ = ["build"]

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "flatten": nn.Flatten,
}


def build(spec: dict, limits: Limits = DEFAULT_LIMITS) -> nn.Module:
    """Build a module from a spec; every check runs before any tensor is allocated.

    Example::

        net = build({"type": "sequential", "children": [
            {"type": "linear", "out_features": 8}, {"type": "relu"},
            {"type": "linear", "out_features": 1}]})
        net(torch.rand(2, 4)).shape  # torch.Size([2, 1])

    A ``linear`` without ``in_features`` is an ``nn.LazyLinear``; a ``shared`` block is
    the very module named by its ``ref``, so its parameters are tied.
    """
    info = validate(spec, limits)
    return _Builder(info).module(spec, "")


class _Builder:
    """Builds each named block once, so every ``shared`` ref gets the same object."""

    def __init__(self, info: SpecInfo):
        self.info = info
        self.built: dict[str, nn.Module] = {}
        self.pending_ties: list[tuple[nn.Module, str, str, str]] = []

    def module(self, spec: dict, path: str) -> nn.Module:
        root = self.block(spec, path)
        for holder, own, name, param in self.pending_ties:
            setattr(holder, own, getattr(self.named(name), param))
        return root

    def named(self, name: str) -> nn.Module:
        if name not in self.built:
            self.built[name] = self.block(self.info.named[name], self.info.name_paths[name])
        return self.built[name]

    def block(self, spec: dict, path: str) -> nn.Module:
        name = spec.get("name")
        if name is not None and name in self.built:
            return self.built[name]
        module = self._make(spec, path)
        if name is not None:
            self.built[name] = module
        for own, target in spec.get("tie", {}).items():
            self.pending_ties.append((module, own, *target.split(".")))
        return module

    def _make(self, spec: dict, path: str) -> nn.Module:
        kind = spec["type"]
        if kind == "sequential":
            return nn.Sequential(
                *(
                    self.block(c, f"{path}.children[{i}]".lstrip("."))
                    for i, c in enumerate(spec["children"])
                )
            )
        if kind == "repeat":
            inner = f"{path}.block".lstrip(".")
            return nn.Sequential(*(self.block(spec["block"], inner) for _ in range(spec["times"])))
        if kind == "shared":
            return self.named(spec["ref"])
        if kind in _ACTIVATIONS:
            return _ACTIVATIONS[kind]()
        if kind == "dropout":
            return nn.Dropout(spec.get("p", 0.5))
        return self._layer(spec, path)

    def _layer(self, spec: dict, path: str) -> nn.Module:
        kind, bias = spec["type"], spec.get("bias", True)
        if kind == "linear":
            n_in = spec.get("in_features")
            if n_in is None and "tie" in spec:
                n_in = self.info.shapes[path]["weight"][1]  # a tied layer needs its shape now
            if n_in is None:
                return nn.LazyLinear(spec["out_features"], bias=bias)
            return nn.Linear(n_in, spec["out_features"], bias=bias)
        if kind == "embedding":
            return nn.Embedding(spec["num_embeddings"], spec["embedding_dim"])
        if kind == "layernorm":
            return nn.LayerNorm(spec["normalized_shape"], eps=spec.get("eps", 1e-5))
        conv = {
            "kernel_size": pair(spec, "kernel_size", path, 1, 31, 3),
            "stride": pair(spec, "stride", path, 1, 16, 1),
            "padding": pair(spec, "padding", path, 0, 16, 0),
            "bias": bias,
        }
        if spec.get("in_channels") is None:
            return nn.LazyConv2d(spec["out_channels"], **conv)
        return nn.Conv2d(spec["in_channels"], spec["out_channels"], **conv)
