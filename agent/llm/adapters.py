"""LoRA adapters applied to a plain model by name: the weights a turn names, swapped in whole.

A version of reverie serves a library of frozen LoRA adapters on one base (``memory.versions``),
and each turn answers with at most one of them: the one holding what the turn is about. Keeping
them as peft modules costs every token: measured on the embedded 135M model, 48 tokens took
2.23 s bare, 2.37 s through peft with its adapters disabled and 3.53 s with one enabled. A merged
adapter (W + scale * B @ A) costs nothing per token, so each module's merged weight is computed
once and kept, and a turn points the model's modules at the set it names: switching to a set
already kept costs nothing. The base's own weights are never written, so the plain model comes
back exactly (not within rounding, as merging in place and subtracting again did), in any dtype.

Merged sets are kept, least recently used evicted first, within ``budget_mb`` (always at least
one; the setting ``adapter_memory_mb``). On the
135M model a set takes 430 MB and building one 0.1 s on 2 cores (a copy of the base's linear
weights and one matmul per module); merging in place and back instead cost 0.05-0.1 s on every
switch, 8-13% of a one-second turn (``examples/bench_nights.py``, latency). A set evicted is
rebuilt into the evicted one's memory. Adapters are read from disk when attached, not in a turn.
A turn may also name several (a knowledge adapter and its user's refined policy): their sum is
merged, as peft sums several active LoRA adapters.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch

from agent.errors import ModelError

ADAPTER_MEMORY_MB = 4096  # merged weight sets kept: nine of the 135M model's
PREFIX = "base_model.model."  # how peft names the wrapped model's modules in a saved adapter


class Lora:
    """One saved adapter: per target module of the base, its A and B matrices and its scale."""

    def __init__(self, folder: Path) -> None:
        from safetensors.torch import load_file

        try:
            config = json.loads((folder / "adapter_config.json").read_text())
            tensors = load_file(str(folder / "adapter_model.safetensors"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read the adapter in {folder}: {exc}") from exc
        if config.get("use_dora") or config.get("fan_in_fan_out"):
            raise ModelError(f"the adapter in {folder} is not a plain LoRA (DoRA or fan-in-fan-out)")
        r = config["r"]
        self.scale = config["lora_alpha"] / (r**0.5 if config.get("use_rslora") else r)
        self.pairs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.endswith(".lora_A.weight"):
                module = key[: -len(".lora_A.weight")].removeprefix(PREFIX)
                self.pairs[module] = (value, tensors[key.replace(".lora_A.", ".lora_B.")])


class AdapterSwitch:
    """The adapters a model may answer with, by name, and the merged weight sets kept for them.

    Adapters are read from disk when attached (the newest ``keep``) or first used, and the ``keep``
    most recently used stay in memory (about 20 MB each at rank 16 on the 135M model)."""

    def __init__(self, keep: int = 16, budget_mb: float = ADAPTER_MEMORY_MB) -> None:
        self.keep, self.budget = keep, budget_mb * 2**20
        self.paths: dict[str, Path] = {}
        self.loaded: dict[str, Lora] = {}
        self.base: dict[str, torch.Tensor] = {}  # per module the base's own weight, never written
        self.sets: dict[tuple[str, ...], dict[str, torch.Tensor]] = {}  # merged weights, by names
        self.merged: tuple[str, ...] = ()  # the names the model answers with now

    def attach(self, model, adapters: Mapping[str, Path]) -> None:
        """Make these the adapters available (the active version's library)."""
        if any(name not in adapters for name in self.merged):
            self.use(model, None)
        self.paths = {name: Path(path) for name, path in adapters.items()}
        self.loaded = {name: lora for name, lora in self.loaded.items() if name in self.paths}
        self.sets = {key: weights for key, weights in self.sets.items() if all(n in self.paths for n in key)}
        newest: dict[str, Lora] = {}
        for name in list(self.paths)[-self.keep:]:  # the newest, when there are more than ``keep``
            try:
                newest[name] = self._lora(name)
            except ModelError:
                pass  # an unreadable adapter fails the turn that needs it, not every turn
        # Build the newest adapters' sets now, as far as the budget goes: a set's first build
        # takes fresh memory, whose page faults cost up to a second on this VM, in no turn.
        self._base(model, list(newest.values()))
        room, build = self.budget - sum(_bytes(w) for w in self.sets.values()), []
        for name in reversed([n for n in newest if (n,) not in self.sets]):
            room -= self._size(newest[name].pairs)
            if room < 0:
                break
            build.append(name)
        for name in reversed(build):  # the newest built last: the most recently used
            self.sets[(name,)] = self._build([newest[name]])

    @torch.no_grad()
    def use(self, model, names: str | Sequence[str] | None) -> None:
        """Point ``model`` at the weights of ``names`` merged (one, several, or None: the plain
        weights), building and keeping that set if it is not kept yet."""
        wanted = (names,) if isinstance(names, str) else tuple(names or ())
        for name in wanted:
            if name not in self.paths:
                raise ModelError(f"no adapter {name!r} is attached to this model")
        key = tuple(sorted(wanted))
        if key == tuple(sorted(self.merged)):
            return
        weights = self.sets.pop(key, None) if key else {}
        if weights is None:  # only a set not kept reads its adapters (from disk past ``keep``)
            loras = [self._lora(name) for name in key]
            self._base(model, loras)
            weights = self._build(loras)
        if key:
            self.sets[key] = weights  # most recently used last
        for module, base in self.base.items():
            model.get_submodule(module).weight.data = weights.get(module, base)
        self.merged = wanted

    def _base(self, model, loras: Sequence[Lora]) -> None:
        """Keep the base's own weight of every module these adapters change (a module never
        pointed elsewhere still holds it)."""
        for module in {m for lora in loras for m in lora.pairs} - self.base.keys():
            self.base[module] = model.get_submodule(module).weight.data

    def _size(self, modules: Iterable[str]) -> int:
        return sum(self.base[m].numel() * self.base[m].element_size() for m in modules)

    def _build(self, loras: Sequence[Lora]) -> dict[str, torch.Tensor]:
        """The base's weights plus the adapters' products, one matmul per module (the B's, scaled,
        side by side times the A's stacked), written into an evicted set's memory when over budget."""
        modules: dict[str, list[tuple[torch.Tensor, torch.Tensor, float]]] = {}
        for lora in loras:
            for module, (a, b) in lora.pairs.items():
                modules.setdefault(module, []).append((a, b, lora.scale))
        size = self._size(modules)
        spare: dict[str, torch.Tensor] = {}
        while self.sets and size + sum(_bytes(w) for w in self.sets.values()) > self.budget:
            spare = self.sets.pop(next(iter(self.sets)))  # the least recently used
        weights = {}
        for module, parts in modules.items():
            base = self.base[module]
            out = spare[module] if module in spare else torch.empty_like(base)
            a = torch.cat([a for a, _, _ in parts]).to(base.device, base.dtype)
            b = torch.cat([b * alpha for _, b, alpha in parts], dim=1).to(base.device, base.dtype)
            weights[module] = torch.addmm(base, b, a, out=out)
        return weights

    def _lora(self, name: str) -> Lora:
        lora = self.loaded.pop(name, None) or Lora(self.paths[name])
        self.loaded[name] = lora  # most recently used last
        while len(self.loaded) > self.keep:
            del self.loaded[next(iter(self.loaded))]
        return lora


def _bytes(weights: Mapping[str, torch.Tensor]) -> int:
    return sum(w.numel() * w.element_size() for w in weights.values())
