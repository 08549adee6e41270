"""Host-side pieces of the RL loop: group-preserving micro-batch layout, group outcome shares, mismatch stats."""

import jax.numpy as jnp
import numpy as np
import pytest

from nsa_jax.train.rl_update import homogeneous_groups, mismatch_stats
from nsa_jax.train.rollout import group_outcomes, micro_batch_layout
from nsa_jax.train.step import split_micro_batches


@pytest.mark.parametrize(("groups", "group_size", "micro"), [(4, 2, 2), (6, 3, 3), (8, 4, 1), (4, 4, 4)])
def test_layout_puts_whole_contiguous_groups_in_each_micro_batch(groups, group_size, micro):
    rows = np.arange(groups * group_size)
    micro_batches = np.asarray(
        split_micro_batches({"r": jnp.asarray(rows[micro_batch_layout(len(rows), group_size, micro)])}, micro)["r"]
    )
    per = groups // micro * group_size
    np.testing.assert_array_equal(micro_batches, rows.reshape(micro, per))


def test_layout_rejects_groups_split_across_micro_batches():
    with pytest.raises(ValueError, match="whole groups"):
        micro_batch_layout(12, 4, 2)


def test_group_outcomes_and_homogeneous_groups():
    rewards = np.array([0, 0, 1, 0, 1, 1, 0, 0], np.float32)  # groups of 2: wrong, mixed, right, wrong
    assert group_outcomes(rewards, 2) == {"reward": 0.375, "all_wrong_frac": 0.5, "all_right_frac": 0.25}
    np.testing.assert_array_equal(homogeneous_groups(rewards, 2), [1, 1, 0, 0, 1, 1, 1, 1])


def test_mismatch_stats_over_response_tokens_only():
    trainer = np.log(np.array([[0.5, 0.5, 0.9], [0.2, 0.4, 0.1]]))
    sampler = np.log(np.array([[0.5, 0.25, 0.9], [9.0, 0.8, 0.1]]))
    mask = np.array([[0, 1, 1], [0, 1, 0]])
    stats = mismatch_stats(trainer, sampler, mask)
    assert stats["mismatch_ratio_max"] == pytest.approx(2.0)
    assert stats["mismatch_ratio_min"] == pytest.approx(0.5)
    assert stats["mismatch_ratio_mean"] == pytest.approx(3.5 / 3)
