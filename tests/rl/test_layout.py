"""Host-side pieces of the RL loop: group-preserving micro-batch layout, group outcome shares, mismatch stats, the
band of columns the update keeps."""

import jax.numpy as jnp
import numpy as np
import pytest

from nsa_jax.train.rl_update import homogeneous_groups, mismatch_stats
from nsa_jax.train.rollout import group_outcomes, micro_batch_layout, used_columns, width_quantum
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


def _band(width: int, rows: list[tuple[int, int]]) -> np.ndarray:
    """An attention mask [len(rows), width] with ones on columns [lo, hi) of each row."""
    mask = np.zeros((len(rows), width), np.int32)
    for r, (lo, hi) in enumerate(rows):
        mask[r, lo:hi] = 1
    return mask


@pytest.mark.parametrize(
    ("rows", "quantum", "want"),
    [
        ([(10, 30), (12, 41)], 8, (9, 41)),  # tokens in columns 10..40 (31 wide) -> 32, widened leftwards
        ([(10, 30), (12, 41)], 1, (10, 41)),
        ([(2, 20)], 16, (0, 32)),  # cannot widen left past column 0: widened rightwards
        ([(0, 100)], 16, (0, 100)),  # never wider than the array
        ([(0, 0)], 16, (0, 100)),  # no token at all: the whole width
    ],
)
def test_used_columns_keeps_the_token_band_rounded_to_the_quantum(rows, quantum, want):
    mask = _band(100, rows)
    cols = used_columns(mask, quantum)
    assert (cols.start, cols.stop) == want
    assert mask[:, cols].sum() == mask.sum()  # no token lost


@pytest.mark.parametrize("width", [10, 120, 1536])
def test_width_quantum_bounds_the_number_of_widths(width):
    q = width_quantum(width)
    assert q % 8 == 0
    widths = {min(width, -(-w // q) * q) for w in range(1, width + 1)}
    assert len(widths) <= 8
