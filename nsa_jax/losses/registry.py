"""Policy losses by method name, so a config can say ``loss = "lens"`` without an if/elif ladder.

Each entry has the common signature ``loss(logp, logp_old, rewards, mask, group_size, *, knobs)`` and returns
``(LossTerm, metrics)``. ``"drgrpo"`` is GRPO with Dr.GRPO's advantage and aggregation preset (arXiv 2503.20783);
``"w-reinforce"`` and ``"psr"`` are ``nsr_loss`` presets (arXiv 2506.01347). The offline losses ``"bcpg"`` and
``"topr"`` take the stored behaviour log-probs in the ``logp_old`` slot; GRPO-offline is ``"grpo"`` on them.
"""

from collections.abc import Callable
from functools import partial

from nsa_jax.losses.lens import lens_loss
from nsa_jax.losses.nsa import bcpg_loss
from nsa_jax.losses.policy import grpo_loss, ngrpo_loss, nsr_loss, rft_loss
from nsa_jax.losses.topr import topr_loss
from nsa_jax.losses.types import lookup

POLICY_LOSSES: dict[str, Callable] = {
    "grpo": grpo_loss,
    "drgrpo": partial(grpo_loss, kind="drgrpo", agg="seq-mean-token-sum-norm"),
    "rloo": partial(grpo_loss, kind="rloo"),
    "lens": lens_loss,
    "nsr": nsr_loss,
    "psr": partial(nsr_loss, kind="psr"),
    "w-reinforce": partial(nsr_loss, kind="w-reinforce"),
    "ngrpo": ngrpo_loss,
    "bcpg": bcpg_loss,
    "topr": topr_loss,
    "rft": rft_loss,
}


def get_policy_loss(name: str) -> Callable:
    """The policy loss registered under ``name``; ValueError listing the known names otherwise."""
    return lookup(POLICY_LOSSES, name, "loss")
