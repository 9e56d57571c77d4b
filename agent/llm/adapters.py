"""LoRA adapters applied to a plain model by name, one at a time, merged into its weights.

A version of reverie serves a library of frozen LoRA adapters on one base (``memory.versions``),
and each turn answers with at most one of them: the one holding what the turn is about. Keeping
them as peft modules costs every token: measured on the embedded 135M model, 48 tokens took
2.23 s bare, 2.37 s through peft with its adapters disabled and 3.53 s with one enabled. Merging
the chosen adapter into the weights (W += scale * B @ A) costs about 0.2 s once and nothing per
token, so the weights stay a plain model and the adapter answering now is merged in place; the
next turn with the same adapter pays nothing, and a turn with none or another one unmerges first.
A turn may also name several (a knowledge adapter and its user's refined policy): their sum is
merged, as peft sums several active LoRA adapters.

Unmerging subtracts the same product it added, so in float32 the weights come back to within a
rounding step; in half precision that error is larger, which is why the GPU path is vLLM's own
run-time adapters (the ``[gpu]`` extra), not this.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from agent.errors import ModelError

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

    @torch.no_grad()
    def apply(self, model, sign: float) -> None:
        for module, (a, b) in self.pairs.items():
            weight = model.get_submodule(module).weight
            weight.addmm_(b.to(weight.device, weight.dtype), a.to(weight.device, weight.dtype), alpha=sign * self.scale)


class AdapterSwitch:
    """The adapters a model may answer with, by name, and the one merged into it right now.

    Adapters are read from disk when first used and the ``keep`` most recently used stay in
    memory (about 20 MB each at rank 16 on the 135M model)."""

    def __init__(self, keep: int = 16) -> None:
        self.keep = keep
        self.paths: dict[str, Path] = {}
        self.loaded: dict[str, Lora] = {}
        self.merged: tuple[str, ...] = ()

    def attach(self, model, adapters: Mapping[str, Path]) -> None:
        """Make these the adapters available (the active version's library)."""
        if any(name not in adapters for name in self.merged):
            self.use(model, None)
        self.paths = {name: Path(path) for name, path in adapters.items()}
        self.loaded = {name: lora for name, lora in self.loaded.items() if name in self.paths}

    def use(self, model, names: str | Sequence[str] | None) -> None:
        """Merge ``names`` (one, several, or None: the plain weights) into ``model``, unmerging
        those merged now that it does not name."""
        wanted = (names,) if isinstance(names, str) else tuple(names or ())
        for name in wanted:
            if name not in self.paths:
                raise ModelError(f"no adapter {name!r} is attached to this model")
        # LoRA deltas add: one merged for this turn too (a user's policy) stays as it is.
        for name in [n for n in self.merged if n not in wanted]:
            self.loaded[name].apply(model, -1.0)
        self.merged = tuple(n for n in self.merged if n in wanted)
        for name in [n for n in wanted if n not in self.merged]:
            lora = self.loaded.pop(name, None) or Lora(self.paths[name])
            self.loaded[name] = lora  # most recently used last
            lora.apply(model, 1.0)
            self.merged += (name,)
        while len(self.loaded) > max(self.keep, len(self.merged)):  # never drop one merged now
            del self.loaded[next(n for n in self.loaded if n not in self.merged)]
