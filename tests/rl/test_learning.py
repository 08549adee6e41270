"""Learning, not just plumbing: GRPO from an SFT start raises held-out pass@1 on the easiest arith level.

Fixed seeds throughout (model init, SFT data, rollout prompts and sampling keys, evaluation keys), so the numbers
are the same on every run on the same platform; the margin is stated in MARGIN.
"""

import importlib

import pytest

from nsa_jax.train import rl, sft

MARGIN = 0.05  # absolute pass@1 gain over the SFT start on held-out level-1 problems


@pytest.mark.slow
@pytest.mark.xfail(
    reason="not reached yet: from the batch-32 SFT start (sampled level-1 pass@1 0.359) 20 GRPO rollouts of 8 x 8 "
    "end at 0.355 with the miniature's lr 2e-5 (LENS 0.355), 0.336 with 5e-5, 0.281 with 1e-4: no learning-rate "
    "tried gains at this budget; nor do 5 Adam steps of 32 x 8 at 1e-4 (0.312) or plain SGD 0.01 / 0.05 (0.328 / "
    "0.305), so it is not Adam's sign-like first steps; no rollout/loss bug found (tests/rl/test_rollout.py)",
    strict=False,
)
def test_grpo_raises_heldout_accuracy_over_its_sft_start(tmp_path):
    start = importlib.import_module("configs.sft_tiny").get_config()
    start.workdir = str(tmp_path / "sft")
    start.eval.enabled = False
    start.metrics.tensorboard = False
    sft.train(start)

    c = importlib.import_module("configs.rl_tiny").get_config("grpo")
    c.workdir = str(tmp_path / "grpo")
    c.model.path = str(tmp_path / "sft" / "export")
    c.rl.train_difficulties = (1,)
    c.rl.num_rollouts = 20
    c.rl.prompts_per_rollout = 8
    c.eval.difficulties = (1,)
    c.eval.every = 20
    _, summary = rl.train_and_report(c)
    assert summary["pass@1"] >= summary["start/pass@1"] + MARGIN, summary
