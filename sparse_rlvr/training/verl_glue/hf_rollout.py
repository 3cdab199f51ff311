"""Rollout backend ``hf``: verl's token-in/token-out rollout contract served by HF transformers.

verl 0.9.1 ships only vLLM/SGLang/TRT-LLM servers. This module gives it a backend that runs
anywhere torch runs (CPU, or one CUDA GPU: same code, device from verl's platform):

- ``HFServer`` (a Ray actor, one per replica, like ``vLLMHttpServer``): holds an HF causal LM and
  answers ``generate(prompt_ids, sampling_params, request_id)`` with a ``TokenOutput``.
  Sampling: temperature (0 = greedy), top-k (<= 0 off), top-p, ``max_tokens`` (default
  ``rollout.response_length``), stop at any EOS id of the model/generation config; one
  sample per request (verl's agent loop repeats each prompt ``rollout.n`` times itself).
  Only the tokenizer's ``len(tokenizer)`` logits count, as in verl's vLLM rollout (it masks the
  padded lm_head rows): no padded id is ever sampled. When ``sampling_params["logprobs"]`` is
  truthy it returns the log-prob of each sampled token under
  ``log_softmax(logits[:len(tokenizer)] / temperature)``: the distribution verl's vLLM rollout
  returns and sparse_rlvr's actor recomputes (``TokenShiftWorker`` cuts its lm_head the same
  way), so the two agree up to float rounding; verl's own actor (plugin off) normalises over the
  padded rows too and differs by log(1 - padded mass). top-k/top-p only restrict *what* is
  sampled, as in vLLM's default raw log-probs.
  Concurrent requests are served together: a ``RequestBatcher`` gathers the calls that arrive
  close together (verl sends a step's samples at once) and ``decode_batch`` samples them in one
  left-padded KV-cache decode, each row stopping at its own EOS or ``max_tokens``. Each request
  draws from its own generator, seeded by (seed, weight version, prompt, k-th request for that
  prompt), so a run's rollouts do not depend on arrival order or on which requests share a batch.
- ``HFServerAdapter`` (``BaseRollout``, lives inside verl's ``ActorRolloutRefWorker``): verl
  calls its ``update_weights(named_tensors)`` after every actor update (checkpoint engine
  backend ``naive``); rank 0 of the replica ships the full tensors to its ``HFServer``, which
  ``load_state_dict``s them, so the next rollout samples from the updated policy.
- ``HFReplica`` (``RolloutReplica``): overrides only ``launch_servers`` to start the
  ``HFServer`` actors; verl's base class forwards sleep/wake/abort/resume/kv-cache calls.

sleep/wake_up/release/resume: the HF model stays resident (tiny models; nothing to free), so
they keep the contract only: ``sleep`` and ``update_weights`` wait for the running batch (a
batch samples from one policy). ``abort_all_requests`` answers queued requests at once and stops
the running batch at its next token, all with ``stop_reason="aborted"``; new requests are
refused the same way until ``resume_generation``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Optional

import ray
import torch
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica, TokenOutput

from sparse_rlvr.training.verl_glue.batched_decoding import DecodeRequest, decode_batch
from sparse_rlvr.training.verl_glue.benchmark_forward_counter import NOT_COUNTED
from sparse_rlvr.training.verl_glue.real_vocab import tokenizer_vocab_size
from sparse_rlvr.training.verl_glue.request_batcher import RequestBatcher, answer
from sparse_rlvr.training.verl_glue.request_seeds import RequestSeeds
from sparse_rlvr.training.verl_glue.verl_internals import set_replica_server, worker_node_id

logger = logging.getLogger("sparse_rlvr.training.verl_glue.hf_rollout")

SERVER_NAME = "sparse_rlvr_hf_server_{replica_rank}"
# A batch closes when no request came for BATCH_QUIET_S, after BATCH_MAX_WAIT_S, or at MAX_BATCH requests.
# verl's agent loop sends a whole step's samples at once; these gaps cover their arrival on a loaded machine.
BATCH_QUIET_S = 0.05
BATCH_MAX_WAIT_S = 1.0
MAX_BATCH = 512
TRACE_ENV = "SPARSE_RLVR_HF_ROLLOUT_TRACE"
"""Set to a file path: each served batch appends a JSON line (requests, tokens, decode seconds)."""


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


def rollout_vocab_size(model_config: Any, path: str) -> int:
    """len(tokenizer): verl's model config's tokenizer (what its vLLM rollout cuts to), else the one saved at `path`."""
    known = tokenizer_vocab_size(model_config)
    if known is not None:
        return known
    from transformers import AutoTokenizer

    tokenizer_path = getattr(model_config, "local_tokenizer_path", None) or getattr(model_config, "tokenizer_path", None)
    return len(AutoTokenizer.from_pretrained(tokenizer_path or path))


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
    vocab_size: int | None,
    should_stop: Optional[Callable[[], bool]] = None,
) -> tuple[list[int], list[float], str]:
    """One request decoded alone (a batch of one); returns (token_ids, log_probs, stop_reason).

    Tokens come from the package's one sampler (`sparse_rlvr.core.sampling.sample`: top-k, then
    top-p, one uniform per token from `generator`; temperature 0 is greedy).
    log_probs[i] = log softmax(logits_i[:vocab_size] / T)[token_i] (T = 1 when greedy); `vocab_size`
    is len(tokenizer) (None: all logits, for a model without padded rows).
    """
    request = DecodeRequest(list(prompt_ids), max_tokens, temperature, top_k, top_p, set(eos_ids), generator)
    result = decode_batch(model, [request], vocab_size=vocab_size, should_stop=should_stop)[0]
    return result.token_ids, result.log_probs, result.stop_reason


@dataclass
class _Pending:
    """A request waiting in the batcher: verl's call, before its generator is drawn."""

    prompt_ids: list[int]
    sampling_params: dict[str, Any]


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
        self.vocab_size = rollout_vocab_size(model_config, path)  # sample only the tokenizer's ids, as vLLM under verl
        self.seed = int(getattr(config, "seed", 0) or 0)
        self.request_seeds = RequestSeeds(self.seed)
        self.pad_id = int(getattr(self.model.config, "pad_token_id", None) or 0)  # left padding, masked out
        self.lock = threading.Lock()  # held by a running batch, a weight sync or a sleep: never two at once
        self.aborted = False
        self.abort_epoch = 0  # a running batch stops when this changes
        self.batcher: RequestBatcher[_Pending] = RequestBatcher(self._serve_batch, quiet_s=BATCH_QUIET_S,
                                                                max_wait_s=BATCH_MAX_WAIT_S, max_batch=MAX_BATCH)
        self.global_steps: Optional[int] = None
        self.weight_version = 0

    def _request_generator(self, prompt_ids: list[int]) -> torch.Generator:
        """A generator seeded by (seed, weight version, prompt, k-th request for that prompt) (``RequestSeeds``)."""
        return torch.Generator().manual_seed(self.request_seeds.next(self.weight_version, prompt_ids))

    def _eos_ids(self, model_config: Any) -> set[int]:
        ids: set[int] = set()
        for source in (getattr(model_config, "generation_config", None), self.model.config):
            eos = getattr(source, "eos_token_id", None) if source is not None else None
            ids.update([eos] if isinstance(eos, int) else list(eos or []))
        return ids

    def _decode_request(self, pending: _Pending) -> DecodeRequest:
        params = pending.sampling_params
        response_length = int(self.config.response_length)
        return DecodeRequest(
            prompt_ids=list(pending.prompt_ids),
            max_tokens=min(int(params.get("max_tokens") or response_length), response_length),
            temperature=float(params.get("temperature", 1.0)),
            top_k=int(params.get("top_k", -1) or -1),
            top_p=float(params.get("top_p", 1.0)),
            eos_ids=self.eos_ids | set(params.get("stop_token_ids") or []),
            generator=self._request_generator(pending.prompt_ids),
        )

    def _serve_batch(self, batch: list[_Pending]) -> list[TokenOutput]:
        """One batch, on the batcher's thread, under the model lock (no weight sync or sleep meanwhile)."""
        with self.lock:
            started = time.perf_counter()
            abort_epoch = self.abort_epoch
            requests = [self._decode_request(pending) for pending in batch]  # arrival order: k-th request per prompt
            results = decode_batch(self.model, requests, vocab_size=self.vocab_size, pad_id=self.pad_id,
                                   should_stop=lambda: self.abort_epoch != abort_epoch)
            fields = {"global_steps": self.global_steps, "weight_version": self.weight_version}
        if TRACE_ENV in os.environ:  # one JSON line per batch (benchmarks/rollout.py reads them)
            with open(os.environ[TRACE_ENV], "a") as trace:
                trace.write(json.dumps({"time": time.time(), "requests": len(batch), "weight_version": fields["weight_version"],
                                        "tokens": sum(len(r.token_ids) for r in results),
                                        "decode_s": round(time.perf_counter() - started, 4)}) + "\n")
        return [
            TokenOutput(token_ids=result.token_ids,
                        log_probs=result.log_probs if pending.sampling_params.get("logprobs") else None,
                        stop_reason=result.stop_reason, extra_fields=dict(fields))
            for pending, result in zip(batch, results)
        ]

    @staticmethod
    def _aborted(sampling_params: dict[str, Any]) -> TokenOutput:
        return TokenOutput(token_ids=[], log_probs=[] if sampling_params.get("logprobs") else None, stop_reason="aborted")

    async def generate(
        self, prompt_ids: list[int], sampling_params: dict[str, Any], request_id: str, **kwargs: Any
    ) -> TokenOutput:
        """verl's token-in/token-out call (``LLMServerClient.generate`` -> ``server.generate.remote``).

        Waits in the batcher with the calls that arrive around it and returns when its own row is done.
        """
        if kwargs.get("image_data") or kwargs.get("video_data"):
            raise NotImplementedError("the hf rollout serves text-only models")
        if not prompt_ids:  # checked here: a bad request must fail alone, not the batch it would join
            raise ValueError(f"hf rollout: request {request_id!r} has an empty prompt; send at least one prompt token")
        if self.aborted:
            return self._aborted(sampling_params)
        return await asyncio.wrap_future(self.batcher.submit(_Pending(list(prompt_ids), dict(sampling_params))))

    def _update_weights_sync(self, named_tensors: dict[str, torch.Tensor], global_steps: Optional[int]) -> int:
        with self.lock:  # waits for the running batch: a batch samples from one policy
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
            return self.weight_version

    async def update_weights(self, named_tensors: dict[str, torch.Tensor], global_steps: Optional[int] = None) -> int:
        """Load the actor's full weights (HF names) once the running batch is done; returns the new weight version."""
        return await asyncio.to_thread(self._update_weights_sync, named_tensors, global_steps)

    async def _wait_for_running_batch(self) -> None:
        def wait() -> None:
            with self.lock:
                pass

        await asyncio.to_thread(wait)

    async def get_weights(self) -> dict[str, torch.Tensor]:
        """The served weights (tests compare them with the actor's)."""
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    async def wake_up(self) -> None:
        return None

    async def sleep(self) -> None:
        await self._wait_for_running_batch()

    async def abort_all_requests(self, reject_request: bool = False) -> None:
        """Queued requests return "aborted" now, running ones at their next token; new ones until resume."""
        self.aborted = True
        self.abort_epoch += 1
        for pending, future in self.batcher.drain():
            answer(future, self._aborted(pending.sampling_params))

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
