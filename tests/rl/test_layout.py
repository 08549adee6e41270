"""Host-side pieces of the RL loop and the core step's group-preserving micro-batches: group outcome shares,
mismatch stats, the band of columns the update keeps, per-token and per-row arrays of a batch."""

import jax.numpy as jnp
import numpy as np
import pytest

from nsa_jax.rollouts import Batch, group_outcomes, homogeneous_groups, mismatch_stats, used_columns, width_quantum
from nsa_jax.train.core import split_micro_batches


@pytest.mark.parametrize(("groups", "group_size", "micro"), [(4, 2, 2), (6, 3, 3), (8, 4, 1), (4, 4, 4), (8, 1, 4)])
def test_micro_batches_hold_whole_contiguous_groups(groups, group_size, micro):
    """Micro-batch m holds groups m, m+M, m+2M, ... each with its G rows contiguous and in order."""
    rows = np.arange(groups * group_size)
    got = np.asarray(split_micro_batches({"r": jnp.asarray(rows)}, micro, group_size)["r"])
    by_group = rows.reshape(groups, group_size)
    want = np.stack([by_group[m::micro].reshape(-1) for m in range(micro)])
    np.testing.assert_array_equal(got, want)
    for m in range(micro):  # every micro-batch is a union of whole groups
        assert set(got[m] // group_size) == set(range(m, groups, micro))


def test_micro_batches_refuse_to_split_a_group():
    with pytest.raises(ValueError, match="whole groups"):
        split_micro_batches({"r": jnp.arange(12)}, 2, 4)  # 3 groups of 4 into 2 micro-batches


def test_batch_cuts_per_token_arrays_only():
    ids = np.arange(12).reshape(2, 6)
    batch = Batch(
        tokens={"input_ids": ids, "attention_mask": np.ones_like(ids)},
        rows={"rewards": np.array([1.0, 0.0]), "step_correct": np.ones((2, 6), bool)},  # [B, S] with S == T
        group_size=2,
    )
    cut = batch.cut(slice(1, 4))
    np.testing.assert_array_equal(cut.tokens["input_ids"], ids[:, 1:4])
    assert cut.rows["step_correct"].shape == (2, 6)
    assert set(cut.take(np.array([1]))) == {"input_ids", "attention_mask", "rewards", "step_correct"}
    with pytest.raises(ValueError, match="per token and per row"):
        Batch(tokens={"input_ids": ids, "rewards": ids}, rows={"rewards": np.zeros(2)})
    with pytest.raises(ValueError, match="per-token array 'loss_mask'"):
        Batch(tokens={"input_ids": ids, "loss_mask": ids[:, :3]})
    with pytest.raises(ValueError, match="whole groups"):
        Batch(tokens={"input_ids": ids}, group_size=4)


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
@pytest.mark.parametrize(("max_widths", "multiple"), [(8, 8), (16, 4)])
def test_width_quantum_bounds_the_number_of_widths(width, max_widths, multiple):
    q = width_quantum(width, max_widths, multiple)
    assert q % multiple == 0 and (q == multiple or -(-width // (q - multiple)) > max_widths)  # the smallest such
    widths = {min(width, -(-w // q) * q) for w in range(1, width + 1)}
    assert len(widths) <= max_widths


def test_bad_rewards_stop_the_run_naming_rollout_and_row():
    from nsa_jax.train.rl import check_rewards

    check_rewards(np.array([0.0, 1.0, 0.5]), 0, 0.0, 1.0)  # in range: nothing happens
    with pytest.raises(ValueError, match=r"rollout 3: reward nan of row 1 \(and 1 more\)"):
        check_rewards(np.array([0.0, np.nan, 1.5]), 3, 0.0, 1.0)
    with pytest.raises(ValueError, match="rollout 7: reward -2.0 of row 0"):
        check_rewards(np.array([-2.0, 1.0]), 7, -1.0, 1.0)
