"""The actor update fetches every field of a step from a real TransferQueue except the plugin's."""

from __future__ import annotations

import torch
from tensordict import TensorDict

from sparse_rlvr.training.verl_glue.single_pass import REF_LOG_PROBS
from sparse_rlvr.training.verl_glue.trainer import PLUGIN_FIELDS, actor_update_fields

VERL_FIELDS = ["responses", "response_mask", "old_log_probs", "ref_log_prob", "advantages", "log_probs", "entropy"]


def test_actor_update_reads_verl_fields_but_not_the_plugins(transfer_queue):
    from transfer_queue import KVBatchMeta
    from verl.utils.transferqueue_utils import kv_batch_meta2batch_meta

    tq = transfer_queue
    keys = ["s0", "s1", "s2"]
    stored = {name: torch.randn(3, 5) for name in [*VERL_FIELDS, *PLUGIN_FIELDS]}
    tq.kv_batch_put(keys=keys, partition_id="train", fields=TensorDict(stored, batch_size=3))
    assert len(PLUGIN_FIELDS) == 13 and REF_LOG_PROBS in PLUGIN_FIELDS

    batch = KVBatchMeta(keys=keys, partition_id="train", tags=[{}] * 3)  # verl's batches name no fields
    fields = actor_update_fields(batch)
    assert sorted(fields) == sorted(VERL_FIELDS)

    # what a worker's update_actor then pulls (verl's own TransferQueue bridge), split over 2 ranks
    batch.fields = fields
    for rank_batch in batch.chunk(2):
        fetched = tq.kv_batch_get_by_meta(rank_batch)
        assert sorted(fetched.keys()) == sorted(VERL_FIELDS)
        assert sorted(kv_batch_meta2batch_meta(rank_batch).field_names) == sorted(VERL_FIELDS)
    torch.testing.assert_close(tq.kv_batch_get_by_meta(batch).to_padded_tensor()["advantages"], stored["advantages"], rtol=0, atol=0)

    named = KVBatchMeta(keys=keys, partition_id="train", tags=[{}] * 3, fields=["advantages", "token_shift_js"])
    assert actor_update_fields(named) == ["advantages"]  # fields already named: only the plugin's are dropped
