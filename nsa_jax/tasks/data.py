"""grain input pipelines over random-access sources (TFDS data sources or lists of built-in problems).

One function builds the whole pipeline so every trainer reads data the same way: shard per process first (each
host reads a disjoint slice, equal in size with ``drop_remainder``), then shuffle with a seed (reshuffled every
epoch), repeat, map, batch. Batches are lists of records: the records are text, which the trainer tokenises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grain


def process_shard(drop_remainder: bool = True) -> grain.sharding.ShardOptions:
    """This JAX process's shard (``jax.process_index()`` of ``jax.process_count()``), for multi-host training."""
    return grain.sharding.ShardByJaxProcess(drop_remainder=drop_remainder)


def make_dataset(
    source: Sequence[Any],
    *,
    batch_size: int,
    seed: int = 0,
    shuffle: bool = True,
    num_epochs: int | None = 1,
    shard: grain.sharding.ShardOptions | None = None,
    transform: Callable[[Any], Any] | None = None,
    drop_remainder: bool = False,
) -> grain.MapDataset:
    """A ``grain.MapDataset`` of batches (lists) over ``source``.

    ``num_epochs=None`` repeats forever. ``shard`` (``grain.sharding.ShardOptions`` or ``process_shard()``) keeps
    records ``shard_index, shard_index + shard_count, ...``; with its ``drop_remainder`` every shard has the same
    length, so hosts stay in step. ``transform`` maps each record (e.g. ``record_to_problem``).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ds = grain.MapDataset.source(source)
    if shard is not None:
        if not 0 <= shard.shard_index < shard.shard_count:
            raise ValueError(f"shard_index {shard.shard_index} outside 0..{shard.shard_count - 1}")
        if shard.drop_remainder:
            ds = ds[: len(ds) // shard.shard_count * shard.shard_count]
        ds = ds[shard.shard_index :: shard.shard_count]
    if shuffle:
        ds = ds.shuffle(seed=seed)
    if num_epochs != 1:
        ds = ds.repeat(num_epochs)
    if transform is not None:
        ds = ds.map(transform)
    return ds.batch(batch_size, drop_remainder=drop_remainder, batch_fn=list)
