"""Rollout backend ``hf``: verl's token-in/token-out rollout contract served by HF transformers.

verl 0.9.1 ships only vLLM/SGLang/TRT-LLM servers. This module gives it a backend that runs
anywhere torch runs (CPU, or one CUDA GPU: same code, device from verl's platform):

- ``HFServer`` (a Ray actor, one per replica, like ``vLLMHttpServer``): holds an HF causal LM and
  answers ``generate(prompt_ids, sampling_params, request_id)`` with a ``TokenOutput``.
  Sampling: temperature (0 = greedy), top-k (<= 0 off), top-p, ``max_tokens`` (default
  ``rollout.response_length``), stop at any EOS id of the model/generation config; one
  sample per request (verl's agent loop repeats each prompt ``rollout.n`` times itself).
  When ``sampling_params["logprobs"]`` is truthy it returns the log-prob of each sampled token
  under ``log_softmax(logits / temperature)``: the same distribution verl's actor uses when it
  recomputes ``old_log_probs`` (``logits.div_(temperature)``), so the two agree up to float
  rounding. top-k/top-p only restrict *what* is sampled, as in vLLM's default raw log-probs.
- ``HFServerAdapter`` (``BaseRollout``, lives inside verl's ``ActorRolloutRefWorker``): verl
  calls its ``update_weights(named_tensors)`` after every actor update (checkpoint engine
  backend ``naive``); rank 0 of the replica ships the full tensors to its ``HFServer``, which
  ``load_state_dict``s them, so the next rollout samples from the updated policy.
- ``HFReplica`` (``RolloutReplica``): overrides only ``launch_servers`` to start the
  ``HFServer`` actors; verl's base class forwards sleep/wake/abort/resume/kv-cache calls.

sleep/wake_up/release/resume: the HF model stays resident (tiny models; nothing to free), so
they are no-ops that keep the contract. ``abort_all_requests`` makes running and queued
requests return early with ``stop_reason="aborted"`` until ``resume_generation``.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Generator
from typing import Any, Optional

import ray
import torch
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica, TokenOutput

from sparse_rlvr.core.sampling import sample
from sparse_rlvr.training.verl_glue.benchmark_forward_counter import NOT_COUNTED
from sparse_rlvr.training.verl_glue.verl_internals import set_replica_server, worker_node_id

logger = logging.getLogger("sparse_rlvr.training.verl_glue.hf_rollout")

SERVER_NAME = "sparse_rlvr_hf_server_{replica_rank}"


def require_platform_loaded() -> str:
    """verl's device name here; raises if CPU was asked for but this process did not load it.

    A Ray worker that missed our plugin (no ``verl.plugins`` entry point, no
    ``VERL_USE_EXTERNAL_MODULES``) would silently fall back to "cuda" and fail later, obscurely.
    """
    from verl.utils.device import get_device_name

    device = get_device_name()
    if os.environ.get("SPARSE_RLVR_DEVICE", "").lower() == "cpu" and device != "cpu":
        raise RuntimeError(
            f"SPARSE_RLVR_DEVICE=cpu but verl's platform in this process (pid {os.getpid()}) is {device!r}: "
            "sparse_rlvr's verl plugin was not loaded here. Install sparse_rlvr (entry point verl.plugins) "
            "or set VERL_USE_EXTERNAL_MODULES=sparse_rlvr.training.verl_glue.registered_backends in the Ray runtime_env."
        )
    return device


def filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Mask logits outside the top-k / nucleus top-p set with -inf.

    Args:
        logits: [V] temperature-scaled logits of one position.
        top_k: keep the k largest (<= 0: keep all).
        top_p: keep the smallest set whose probability reaches top_p (>= 1: keep all).
    """
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop_sorted = cumulative - sorted_logits.softmax(-1) >= top_p  # keep the token that crosses top_p
        logits = logits.masked_fill(drop_sorted.scatter(0, order, drop_sorted), float("-inf"))
    return logits


@torch.no_grad()
def sample_tokens(
    model: torch.nn.Module,
    prompt_ids: list[int],
    *,
    max_tokens: int,
    temperature: float,
    top_k: int,
    top_p: float,
    eos_ids: set[int],
    generator: torch.Generator,
    should_stop: Optional[Callable[[], bool]] = None,
) -> tuple[list[int], list[float], str]:
    """Autoregressive sampling with a KV cache; returns (token_ids, log_probs, stop_reason).

    Tokens come from the package's one sampler (`sparse_rlvr.core.sampling.sample`: top-k, then
    top-p, one uniform per token from `generator`; temperature 0 is greedy).
    log_probs[i] = log softmax(logits_i / T)[token_i] (T = 1 when greedy).
    """
    device = next(model.parameters()).device
    input_ids = torch.tensor([prompt_ids], device=device)
    past = None
    tokens: list[int] = []
    log_probs: list[float] = []
    for _ in range(max_tokens):
        if should_stop is not None and should_stop():
            return tokens, log_probs, "aborted"
        out = model(input_ids=input_ids, past_key_values=past, use_cache=True)
        past = out.past_key_values
        logits = out.logits[0, -1].float()
        scaled = logits / temperature if temperature > 0 else logits
        token = int(sample(logits[None], temperature, top_p, generator, top_k=top_k)[0])
        tokens.append(token)
        log_probs.append(float(scaled.log_softmax(-1)[token]))
        if token in eos_ids:
            return tokens, log_probs, "completed"
        input_ids = torch.tensor([[token]], device=device)
    return tokens, log_probs, "completed"


class HFServer:
    """Ray actor serving one rollout replica with HF transformers (see module docstring)."""

    def __init__(self, config: Any, model_config: Any, replica_rank: int = 0, **unused: Any) -> None:
        from transformers import AutoModelForCausalLM

        self.config = config
        self.replica_rank = replica_rank
        device = "cuda" if require_platform_loaded() == "cuda" and torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        path = getattr(model_config, "local_path", None) or model_config.path  # DictConfig or HFModelConfig
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
        setattr(self.model, NOT_COUNTED, True)  # decoding is not a training forward (forward_count)
        self.eos_ids = self._eos_ids(model_config)
        self.seed = int(getattr(config, "seed", 0) or 0)
        self.requests_seen: collections.Counter = collections.Counter()
        self.lock = threading.Lock()  # one forward at a time; Ray runs this async actor's calls concurrently
        self.aborted = False
        self.global_steps: Optional[int] = None
        self.weight_version = 0

    def _request_generator(self, prompt_ids: list[int]) -> torch.Generator:
        """A generator seeded by (seed, weight version, prompt, k-th request for that prompt).

        Requests arrive concurrently in any order; seeding each from what it is, not from when it
        came, makes a run's rollouts the same every time (e.g. an ablation's runs sample alike).
        """
        key = (self.weight_version, tuple(prompt_ids))
        k = self.requests_seen[key]
        self.requests_seen[key] += 1
        digest = hashlib.sha256(repr((self.seed, *key, k)).encode()).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)

    def _eos_ids(self, model_config: Any) -> set[int]:
        ids: set[int] = set()
        for source in (getattr(model_config, "generation_config", None), self.model.config):
            eos = getattr(source, "eos_token_id", None) if source is not None else None
            ids.update([eos] if isinstance(eos, int) else list(eos or []))
        return ids

    def _generate_sync(self, prompt_ids: list[int], sampling_params: dict[str, Any]) -> TokenOutput:
        response_length = int(self.config.response_length)
        max_tokens = min(int(sampling_params.get("max_tokens") or response_length), response_length)
        eos_ids = self.eos_ids | set(sampling_params.get("stop_token_ids") or [])
        with self.lock:
            generator = self._request_generator(prompt_ids)
            tokens, log_probs, reason = sample_tokens(
                self.model,
                list(prompt_ids),
                max_tokens=max_tokens,
                temperature=float(sampling_params.get("temperature", 1.0)),
                top_k=int(sampling_params.get("top_k", -1) or -1),
                top_p=float(sampling_params.get("top_p", 1.0)),
                eos_ids=eos_ids,
                generator=generator,
                should_stop=lambda: self.aborted,
            )
        return TokenOutput(
            token_ids=tokens,
            log_probs=log_probs if sampling_params.get("logprobs") else None,
            stop_reason=reason,
            extra_fields={"global_steps": self.global_steps, "weight_version": self.weight_version},
        )

    async def generate(
        self, prompt_ids: list[int], sampling_params: dict[str, Any], request_id: str, **kwargs: Any
    ) -> TokenOutput:
        """verl's token-in/token-out call (``LLMServerClient.generate`` -> ``server.generate.remote``)."""
        if kwargs.get("image_data") or kwargs.get("video_data"):
            raise NotImplementedError("the hf rollout serves text-only models")
        if self.aborted:
            return TokenOutput(token_ids=[], log_probs=[] if sampling_params.get("logprobs") else None,
                               stop_reason="aborted")
        return await asyncio.to_thread(self._generate_sync, prompt_ids, sampling_params)

    async def update_weights(self, named_tensors: dict[str, torch.Tensor], global_steps: Optional[int] = None) -> int:
        """Load the actor's full weights (HF names); returns the new weight version."""
        with self.lock:
            state = self.model.state_dict()
            missing = [name for name in state if name not in named_tensors and not name.endswith("lm_head.weight")]
            if missing:
                raise KeyError(f"hf rollout: actor sent no tensor for {missing[:5]}")
            for name, tensor in named_tensors.items():
                if name in state:
                    state[name].copy_(tensor.to(state[name].dtype))
            if getattr(self.model.config, "tie_word_embeddings", False):
                self.model.tie_weights()
        self.global_steps = global_steps
        self.weight_version += 1
        self.requests_seen.clear()
        return self.weight_version

    async def get_weights(self) -> dict[str, torch.Tensor]:
        """The served weights (tests compare them with the actor's)."""
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    async def wake_up(self) -> None:
        return None

    async def sleep(self) -> None:
        return None

    async def abort_all_requests(self, reject_request: bool = False) -> None:
        self.aborted = True

    async def resume_generation(self) -> None:
        self.aborted = False

    async def clear_kv_cache(self) -> None:
        return None

    async def release_kv_cache(self) -> None:
        return None

    async def resume_kv_cache(self) -> None:
        return None

    async def start_profile(self, **kwargs: Any) -> None:
        return None

    async def stop_profile(self) -> None:
        return None


class HFReplica(RolloutReplica):
    """verl ``RolloutReplica`` for backend ``hf``; overrides ``launch_servers`` (abstract in verl)
    to start one ``HFServer`` actor per replica, on the node of the replica's first worker."""

    async def launch_servers(self) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        node_id = await worker_node_id(self.workers[0])
        name = SERVER_NAME.format(replica_rank=self.replica_rank) + self.name_suffix
        server = (
            ray.remote(HFServer)
            .options(
                name=name,
                num_cpus=0,
                max_concurrency=self.max_concurrency,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
            )
            .remote(config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        )
        set_replica_server(self, server, address=name)  # no HTTP endpoint; the name is the load balancer's key


class HFServerAdapter(BaseRollout):
    """verl ``BaseRollout`` for backend ``hf``, living inside ``ActorRolloutRefWorker``.

    Implements the abstract ``resume``/``release``/``update_weights``. Every rank must consume
    the weight generator (FSDP gathers collectively); rank 0 of the replica sends them.
    """

    def __init__(self, config: Any, model_config: Any, device_mesh: Any, *args: Any, **kwargs: Any) -> None:
        require_platform_loaded()
        super().__init__(config, model_config, device_mesh)
        world = (
            self.config.tensor_model_parallel_size
            * self.config.data_parallel_size
            * self.config.pipeline_model_parallel_size
        )
        rank = int(os.environ.get("RANK", 0))
        self.replica_rank = rank // world
        self.rollout_rank = rank % world
        self._server = None

    def _server_handle(self) -> Any:
        if self._server is None:
            self._server = ray.get_actor(SERVER_NAME.format(replica_rank=self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]) -> None:
        return None

    async def release(self) -> None:
        return None

    async def update_weights(
        self,
        weights: Generator[tuple[str, torch.Tensor], None, None],
        wire_format: str = "named_tensors",
        global_steps: Optional[int] = None,
        **kwargs: Any,
    ) -> None:
        if wire_format != "named_tensors":
            raise NotImplementedError(f"hf rollout takes full named tensors, not {wire_format!r}")
        if kwargs.get("peft_config") is not None:
            raise NotImplementedError("hf rollout: set model.lora.merge=True to sync merged LoRA weights")
        named = {name: tensor.detach().to("cpu", copy=True) for name, tensor in weights}
        if self.rollout_rank == 0:
            await self._server_handle().update_weights.remote(named, global_steps)
