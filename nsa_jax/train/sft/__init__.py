"""Supervised fine-tuning (`config.trainer = "sft"`): data, the NLL loss, greedy held-out evaluation."""

from nsa_jax.train.sft.data import Batcher, DataError, Rows, format_prompt, jsonl_pairs, task_pairs, tokenize
from nsa_jax.train.sft.trainer import fit, nll_loss, train

__all__ = [
    "Batcher",
    "DataError",
    "Rows",
    "fit",
    "format_prompt",
    "jsonl_pairs",
    "nll_loss",
    "task_pairs",
    "tokenize",
    "train",
]
