"""The trainer loop: a run whose loss stays non-finite stops with a clear message after K skipped steps."""

import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY, single_device_mesh

from nsa_jax import models
from nsa_jax.train import NonFiniteError
from nsa_jax.train.sft import Batcher, Rows, fit, nll_loss

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from configs import sft_tiny


def _nan_loss(model, batch, rng):
    term, metrics = nll_loss(model, batch, rng, chunk_size=16)
    return term._replace(total=term.total * np.nan), metrics


def test_nonfinite_run_stops_after_k_in_a_row(tmp_path):
    config = sft_tiny.get_config()
    config.workdir = str(tmp_path)
    config.nonfinite_max_in_a_row = 2
    config.batch_size = 4
    config.metrics.tensorboard = False
    rng = np.random.default_rng(0)
    rows = Rows(
        rng.integers(1, TINY.vocab_size, (8, 12)).astype(np.int32), np.ones((8, 12), np.int32), np.ones((8, 12), "f4")
    )
    with pytest.raises(NonFiniteError, match="non-finite 2 steps in a row"):
        fit(config, models.init_model(TINY, 0), _nan_loss, Batcher(rows, 4, seed=0), single_device_mesh())
