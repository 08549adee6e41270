"""Every experiment config builds for every argument its docstring names, is locked (a typo fails), and names a
registered trainer; every method preset names a registered loss."""

import importlib
import os
import sys

import pytest

from nsa_jax import losses, train

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the configs/ package
presets = importlib.import_module("configs.rl_presets")
METHODS, OFFLINE_METHODS = presets.METHODS, presets.OFFLINE_METHODS

CASES = [
    ("demo", None),
    ("sft_tiny", None),
    ("dpo_tiny", None),
    ("rm_tiny", None),
    ("prm_tiny", None),
    ("llm_judge_tiny", None),
    ("pns_tiny", None),
    ("pns_pairs_tiny", None),
    *(("sft_qwen2_5", size) for size in ("0.5b", "1.5b", "7b")),
    *(("rl_tiny", name) for name in METHODS),
    *(("rl_qwen2_5_1_5b", f"{name},{data}") for name in ("grpo", "lens") for data in ("gsm8k", "math")),
    *(("offline_tiny", name) for name in OFFLINE_METHODS),
    *(("offline_qwen2_5", name) for name in OFFLINE_METHODS),
    *(("offline_tiny", f"bcpg_nsa,beta={beta:g}") for beta in presets.BETA_SWEEP),
    ("prm_qwen2_5", None),
    *(("pns_qwen2_5", stage) for stage in ("rm", "generator", "pairs")),
]


@pytest.mark.parametrize(("module", "arg"), CASES)
def test_config_builds_locked_with_a_registered_trainer(module, arg):
    config = importlib.import_module(f"configs.{module}").get_config(arg)
    assert config.trainer in train.TRAINERS
    with pytest.raises(AttributeError):
        config.optimizer.learnig_rate = 1.0  # a typo
    for block in ("rl", "offline"):
        if block in config:
            losses.get_policy_loss(config[block].loss)


def test_method_presets_name_registered_losses():
    for loss, _ in METHODS.values():
        losses.get_policy_loss(loss)
    for loss, _, labels in OFFLINE_METHODS.values():
        losses.get_policy_loss(loss)
        assert labels in ("none", "oracle")


def test_beta_sweep_argument_sets_the_nsa_beta_and_refuses_other_knobs():
    c = importlib.import_module("configs.offline_tiny").get_config("bcpg_nsa,beta=-0.5")
    assert c.offline.loss_kwargs.nsa_beta == -0.5 and c.offline.step_labels == "oracle"
    assert "beta-0.5" in c.workdir
    with pytest.raises(ValueError, match="BCPG's knob"):
        importlib.import_module("configs.offline_tiny").get_config("topr,beta=0")
    with pytest.raises(ValueError, match="method,beta=X"):
        importlib.import_module("configs.offline_tiny").get_config("bcpg_nsa,tau=1")
