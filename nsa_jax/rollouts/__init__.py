"""nsa_jax.rollouts: sample -> decode -> reward, and the host batches trainers read.

`collect` samples G responses per problem with the in-JAX sampler and scores them with a pluggable reward function
(`verifier_reward(task)` is the task's own verifier); `Rollout.batch()` is a `Batch` of per-token and per-row
arrays; `OfflineSet` / `collect_offline` are stored data sets of rollouts (behaviour log-probs kept) for the
offline methods; `token_band` cuts a batch to the columns that hold tokens; `group_outcomes` and `mismatch_stats` are the
statistics every trainer reports. No optimiser here: `nsa_jax.train` uses this package, never the other way.
"""

from nsa_jax.rollouts.batch import (
    Batch,
    group_outcomes,
    homogeneous_groups,
    mismatch_stats,
    prompt_apart,
    response_start,
    split_by_prompt,
    token_band,
    used_columns,
    width_quantum,
)
from nsa_jax.rollouts.collect import Rollout, collect, decode, encode_prompts, sample_responses
from nsa_jax.rollouts.offline import OfflineSet, collect_offline
from nsa_jax.rollouts.rewards import RewardFn, verifier_reward

__all__ = [
    "Batch",
    "OfflineSet",
    "RewardFn",
    "Rollout",
    "collect",
    "collect_offline",
    "decode",
    "encode_prompts",
    "group_outcomes",
    "homogeneous_groups",
    "mismatch_stats",
    "prompt_apart",
    "response_start",
    "sample_responses",
    "split_by_prompt",
    "token_band",
    "used_columns",
    "verifier_reward",
    "width_quantum",
]
