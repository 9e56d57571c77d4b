"""The default backend: a transformers causal LM with its own chat template, on CPU or GPU."""

from __future__ import annotations

import copy
import json
import os
import queue
import threading
import warnings
from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

# peft asks transformers a deprecated question on every adapter load; nothing for a user to fix.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)

from agent.errors import Interrupted, ModelError
from agent.llm.adapters import ADAPTER_MEMORY_MB, AdapterSwitch
from agent.llm.protocol import AdapterChoice, Generation, GenerationOptions, Message, TokenScores

DEFAULT_OPTIONS = GenerationOptions()


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":  # bf16 halves memory on GPUs; CPUs here are faster and exact in fp32
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype)


def load_pretrained(source: str | Path, device: torch.device, dtype: torch.dtype):
    """Load tokenizer and model from a folder or an HF id; any failure is one ModelError line.

    An HF id is looked up in the local cache first, so a cached model loads with no network
    round trip; only a model missing from the cache is fetched, unless HF_HUB_OFFLINE=1.
    """
    try:
        try:
            tokenizer, model = _from_pretrained(source, dtype, local_files_only=True)
        except OSError:
            if Path(source).exists() or os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
                raise
            tokenizer, model = _from_pretrained(source, dtype, local_files_only=False)
    except (OSError, ValueError) as exc:
        if not Path(source).exists() and os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
            raise ModelError(
                f"model {source} is not in the local Hugging Face cache, and HF_HUB_OFFLINE=1 forbids "
                "downloading it; give a local folder or embedded:NAME"
            ) from exc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load model {source}: {first}") from exc
    if tokenizer.chat_template is None:
        raise ModelError(f"model {source} has no chat template; reverie needs a chat (instruct) model")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device).eval()
    return tokenizer, model


def _merge_adapter(model, adapter_dir: str | Path):
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload().eval()
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot apply the adapter in {adapter_dir}: {exc}") from exc


def _from_pretrained(source: str | Path, dtype: torch.dtype, local_files_only: bool):
    tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=local_files_only)
    model = AutoModelForCausalLM.from_pretrained(str(source), dtype=dtype, local_files_only=local_files_only)
    return tokenizer, model


class _TextCallback(BaseStreamer):
    """Decodes tokens as ``generate`` makes them and hands each new piece of text to a callback.

    It runs inside ``generate``, on the caller's thread: streaming needs no thread of its own.
    """

    def __init__(self, tokenizer, on_text: Callable[[str], None]) -> None:
        self.tokenizer, self.on_text = tokenizer, on_text
        self.ids: list[int] = []
        self.shown = ""
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate() first puts the whole prompt
            self.prompt_seen = True
            return
        self.ids.extend(value.reshape(-1).tolist())
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        # Hold back an incomplete multi-byte character until its last byte arrives.
        if len(text) > len(self.shown) and not text.endswith("\ufffd"):
            self.on_text(text[len(self.shown) :])
            self.shown = text

    def end(self) -> None:
        pass


class _StopWhenAsked(StoppingCriteria):
    """Checked after every generated token: a stop request ends generation within one token."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids, scores, **kwargs) -> torch.Tensor:
        if self.event.is_set():
            raise Interrupted("stopped on request")
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


class TransformersBackend:
    """Serves one model folder (or HF id); ``reload`` swaps in another version in place.

    ``stop``, when set to a ``threading.Event``, ends any generation within a token of the
    event being set, with ``Interrupted``: the owner's way to stop long work (Ctrl-C)."""

    stop: threading.Event | None = None

    def __init__(
        self,
        source: str | Path,
        *,
        name: str | None = None,
        version: str = "base",
        device: str = "auto",
        dtype: str = "auto",
        max_context: int | None = None,
        adapter_memory_mb: float = ADAPTER_MEMORY_MB,
    ) -> None:
        self.name = name or str(source)
        self._adapter_memory_mb = adapter_memory_mb
        self._device = pick_device(device)
        self._dtype = pick_dtype(dtype, self._device)
        self._max_context = max_context
        self._swap = threading.Lock()
        self._load(source, version)

    @classmethod
    def from_model(cls, tokenizer, model, *, name: str, version: str, max_context: int | None = None):
        """Serve a model already in memory (a candidate being evaluated, a base being trained)."""
        backend = cls.__new__(cls)
        backend.name, backend._max_context, backend._swap = name, max_context, threading.Lock()
        backend._device = next(model.parameters()).device
        backend._dtype = next(model.parameters()).dtype
        window = getattr(model.config, "max_position_embeddings", None) or 2048
        backend.tokenizer, backend.model, backend.version, backend.path = tokenizer, model.eval(), version, None
        backend._adapter_memory_mb = ADAPTER_MEMORY_MB
        backend._adapters = AdapterSwitch(budget_mb=ADAPTER_MEMORY_MB)
        backend.context_window = min(window, max_context) if max_context else window
        return backend

    # -- loading -------------------------------------------------------------------------

    def _load(self, source: str | Path, version: str) -> None:
        adapter = Path(source) / "adapter_config.json"
        if adapter.is_file():  # a LoRA version: its base, with the adapter merged in for speed
            base = json.loads(adapter.read_text())["base_model_name_or_path"]
            tokenizer, model = load_pretrained(base, self._device, self._dtype)
            model = _merge_adapter(model, source)
        else:
            tokenizer, model = load_pretrained(source, self._device, self._dtype)
        window = getattr(model.config, "max_position_embeddings", None) or 2048
        with self._swap:  # a turn in flight keeps the objects it already holds
            self.tokenizer, self.model = tokenizer, model
            self._adapters = AdapterSwitch(budget_mb=self._adapter_memory_mb)
            self.version = version
            self.path = Path(source) if Path(source).exists() else None
            self.context_window = min(window, self._max_context) if self._max_context else window

    def reload(self, path: Path, version: str) -> None:
        if self.path is not None and Path(path) == self.path:  # a version over the same weights: its
            self.version = version  # library differs, and ``attach`` says which adapters it has
            return
        self._load(path, version)

    def attach(self, adapters: Mapping[str, Path]) -> None:
        self._adapters.attach(self.model, adapters)

    def _with(self, adapter: AdapterChoice):
        """The model, with ``adapter`` merged into it (or none)."""
        self._adapters.use(self.model, adapter)
        return self.model

    # -- text and tokens -----------------------------------------------------------------

    def render(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        return self.tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def count_chat_tokens(self, messages: Sequence[Message]) -> int:
        return self.count_tokens(self.render(messages))

    def _encode_chat(self, messages: Sequence[Message], prefill: str = "") -> torch.Tensor:
        ids = self.tokenizer(self.render(messages) + prefill, add_special_tokens=False, return_tensors="pt")
        return ids["input_ids"].to(self._device)

    def _generate_kwargs(self, options: GenerationOptions) -> dict:
        sample = options.temperature > 0
        kwargs = dict(
            max_new_tokens=options.max_new_tokens,
            do_sample=sample,
            repetition_penalty=options.repetition_penalty,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        if options.max_time_s is not None:
            kwargs["max_time"] = options.max_time_s
        if self.stop is not None:
            kwargs["stopping_criteria"] = StoppingCriteriaList([_StopWhenAsked(self.stop)])
        if sample:
            kwargs.update(temperature=options.temperature, top_p=options.top_p)
            if options.seed is not None:
                torch.manual_seed(options.seed)
        else:  # silence the model's sampling defaults, which greedy decoding ignores anyway
            kwargs.update(temperature=None, top_p=None, top_k=None)
        return kwargs

    def _finish(self, new_ids: list[int], prompt_tokens: int) -> Generation:
        eos = set(self._eos_ids())
        stop_at = next((i for i, token in enumerate(new_ids) if token in eos), None)
        stopped = stop_at is not None
        if stopped:  # in a batch, what follows a row's first eos is padding
            new_ids = new_ids[: stop_at + 1]
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True).strip()
        finish = "stop" if stopped else "length"
        return Generation(text, prompt_tokens, len(new_ids), finish)

    def _eos_ids(self) -> list[int]:
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        return list(eos) if isinstance(eos, (list, tuple)) else [eos]

    # -- generation ----------------------------------------------------------------------

    @torch.inference_mode()
    def generate(
        self,
        messages: Sequence[Message],
        options: GenerationOptions = DEFAULT_OPTIONS,
        on_text: Callable[[str], None] | None = None,
        prefill: str = "",
    ) -> Generation:
        model, ids = self._with(options.adapter), self._encode_chat(messages, prefill)
        kwargs = self._generate_kwargs(options)
        if on_text is not None:
            kwargs["streamer"] = _TextCallback(self.tokenizer, on_text)
        out = model.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)
        return self._finish(out[0, ids.shape[1] :].tolist(), ids.shape[1])

    @torch.inference_mode()
    def generate_batch(
        self,
        conversations: Sequence[Sequence[Message]],
        options: GenerationOptions = DEFAULT_OPTIONS,
        prefill: str = "",
    ) -> list[Generation]:
        if not conversations:
            return []
        model, tokenizer = self._with(options.adapter), self.tokenizer
        prompts = [self.render(c) + prefill for c in conversations]
        tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
        batch = tokenizer(prompts, add_special_tokens=False, padding=True, return_tensors="pt").to(self._device)
        out = model.generate(**batch, **self._generate_kwargs(options))
        width = batch["input_ids"].shape[1]
        return [
            self._finish(row[width:].tolist(), int(mask.sum()))
            for row, mask in zip(out, batch["attention_mask"])
        ]

    def stream(
        self, messages: Sequence[Message], options: GenerationOptions = DEFAULT_OPTIONS
    ) -> Generator[str, None, Generation]:
        # generate() runs on a worker thread so this generator can yield as text arrives. On a
        # 2-core CPU a second thread running torch is about 1.6x slower while another thread
        # also runs torch; the Agent therefore streams through generate(on_text=...) instead.
        chunks: queue.Queue = queue.Queue()
        outcome: dict = {}

        def work() -> None:
            try:
                outcome["generation"] = self.generate(messages, options, on_text=chunks.put)
            except BaseException as exc:  # surfaced in the caller's thread below
                outcome["error"] = exc
            finally:
                chunks.put(None)

        threading.Thread(target=work, daemon=True).start()
        while (chunk := chunks.get()) is not None:
            yield chunk
        if "error" in outcome:
            raise outcome["error"]
        return outcome["generation"]

    # -- scoring -------------------------------------------------------------------------

    def _prompt_and_continuation_ids(self, prompt: str, continuation: str) -> tuple[list[int], list[int]]:
        encode = self.tokenizer
        prompt_ids = encode(prompt, add_special_tokens=False)["input_ids"]
        cont_ids = encode(continuation, add_special_tokens=False)["input_ids"] if continuation else []
        if not prompt_ids:
            raise ValueError("score/logits need a non-empty prompt")
        return prompt_ids, cont_ids

    @torch.inference_mode()
    def logits(self, prompt: str, continuation: str = "", adapter: AdapterChoice = None) -> torch.Tensor:
        prompt_ids, cont_ids = self._prompt_and_continuation_ids(prompt, continuation)
        ids = torch.tensor([prompt_ids + cont_ids], device=self._device)
        out = self._with(adapter)(input_ids=ids).logits[0]  # (T, V)
        return out[len(prompt_ids) - 1 :].float()  # (len(cont) + 1, V)

    def score(self, prompt: str, continuation: str, adapter: AdapterChoice = None) -> TokenScores:
        _, cont_ids = self._prompt_and_continuation_ids(prompt, continuation)
        logprobs = torch.log_softmax(self.logits(prompt, continuation, adapter)[:-1], dim=-1)  # (len(cont), V)
        picked = logprobs.gather(1, torch.tensor(cont_ids, device=logprobs.device)[:, None])[:, 0]
        return TokenScores(cont_ids, picked.tolist())

    @torch.inference_mode()
    def score_batch(self, prompt: str, continuations: Sequence[str], adapter: AdapterChoice = None,
                    batch_size: int = 16) -> list[TokenScores]:
        # The prompt is read once and its keys and values repeated for each batch of continuations
        # (right-padded: a causal model's logits at a position do not depend on what follows it),
        # so a batch costs its continuations' tokens only: 4x faster on taste reading's 85 answers.
        model = self._with(adapter)
        prompt_ids, _ = self._prompt_and_continuation_ids(prompt, "")
        prefix = model(input_ids=torch.tensor([prompt_ids], device=self._device), use_cache=True)
        first = torch.log_softmax(prefix.logits[0, -1].float(), dim=-1)  # each continuation's first token
        out: list[TokenScores] = []
        for start in range(0, len(continuations), batch_size):
            rows = [self._prompt_and_continuation_ids(prompt, c)[1] for c in continuations[start : start + batch_size]]
            width = max(1, *(len(c) for c in rows))
            ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, device=self._device)
            mask = torch.zeros((len(rows), len(prompt_ids) + width), dtype=torch.long, device=self._device)
            mask[:, : len(prompt_ids)] = 1
            for i, c in enumerate(rows):
                ids[i, : len(c)] = torch.tensor(c, dtype=torch.long)
                mask[i, len(prompt_ids) : len(prompt_ids) + len(c)] = 1
            cache = copy.deepcopy(prefix.cache)
            cache.batch_repeat_interleave(len(rows))
            logits = model(input_ids=ids, attention_mask=mask, cache=cache).logits
            for i, c in enumerate(rows):  # normalised only where a continuation token is read
                rest = torch.log_softmax(logits[i, : max(len(c) - 1, 0)].float(), dim=-1)
                picked = rest.gather(1, torch.tensor(c[1:], dtype=torch.long, device=ids.device)[:, None])[:, 0]
                out.append(TokenScores(c, ([first[c[0]].item()] if c else []) + picked.tolist()))
        return out
