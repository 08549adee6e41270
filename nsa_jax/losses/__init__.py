"""Pure-functional RL losses for LLM reasoning (maths in ALGORITHMS.md; public names fixed by DESIGN.md).

Everything here is a pure, jit-compatible function of arrays, differentiable in ``logp`` (or the policy log-prob
sums / reward scores for the preference losses), with float32 arithmetic whatever the input dtype. Losses return
``(LossTerm, metrics)``: a deferred-reduction ``(total, denom)`` pair and a dict of float32 scalars.

Every policy loss shares the signature ``loss(logp, logp_old, rewards, mask, group_size, *, knobs)``;
``POLICY_LOSSES`` maps method names to them.
"""

from nsa_jax.losses.advantages import (
    GROUP_ADVANTAGES,
    OUTCOME_ADVANTAGES,
    all_wrong_fraction,
    group_advantages,
    outcome_advantages,
)
from nsa_jax.losses.aggregation import AGGREGATIONS, aggregate
from nsa_jax.losses.kl import KL_ESTIMATORS, kl
from nsa_jax.losses.lens import lens_advantages, lens_loss, lens_rewards, lens_weight
from nsa_jax.losses.logprobs import token_logprobs
from nsa_jax.losses.nsa import bcpg_loss, nsa_mined_mask, nsa_token_weights
from nsa_jax.losses.policy import grpo_loss, ngrpo_loss, nsr_loss, policy_loss, rft_loss
from nsa_jax.losses.preference import DPO_LOSSES, bt_loss, dpo_loss, step_bce_loss
from nsa_jax.losses.registry import POLICY_LOSSES, get_policy_loss
from nsa_jax.losses.topr import topr_loss
from nsa_jax.losses.types import LossTerm

__all__ = [
    "AGGREGATIONS",
    "DPO_LOSSES",
    "GROUP_ADVANTAGES",
    "KL_ESTIMATORS",
    "OUTCOME_ADVANTAGES",
    "POLICY_LOSSES",
    "LossTerm",
    "aggregate",
    "all_wrong_fraction",
    "bcpg_loss",
    "bt_loss",
    "dpo_loss",
    "get_policy_loss",
    "group_advantages",
    "grpo_loss",
    "kl",
    "lens_advantages",
    "lens_loss",
    "lens_rewards",
    "lens_weight",
    "ngrpo_loss",
    "nsa_mined_mask",
    "nsa_token_weights",
    "nsr_loss",
    "outcome_advantages",
    "policy_loss",
    "rft_loss",
    "step_bce_loss",
    "token_logprobs",
    "topr_loss",
]
