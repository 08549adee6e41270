"""The one resumable training loop: init or resume, rounds of steps, evaluate, log, checkpoint.

Every trainer runs this loop; it supplies only what differs: the `Engine` (its loss) and a `Source` of rounds (its
data). A round is the unit of data position, logging and checkpointing: one batch for SFT, one rollout and its PPO
epochs for online RL.

Resume is exact: a checkpoint holds the state (parameters, optimiser, step, PRNG key), the source's data state
(checked against this run's, so a restart with other data settings is refused) and the run's history (every record
written to `metrics.jsonl`). A restarted run rewrites `metrics.jsonl` from that history and continues, so a resumed
run and a rerun of a finished one end with the same records, and the same summary, as a run never interrupted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Protocol

import ml_collections
from tqdm import tqdm

from nsa_jax import parallel
from nsa_jax.train.core.checkpoint import Checkpointer
from nsa_jax.train.core.engine import Engine, Round
from nsa_jax.train.core.metrics import MetricsWriter

Record = dict[str, float]


class NonFiniteError(RuntimeError):
    """Training stopped: the loss or gradient was non-finite `nonfinite_max_in_a_row` steps in a row."""


class Source(Protocol):
    """Where a trainer's rounds come from: a function of the position (and the engine's current state, for
    on-policy sampling) only, so a resumed run replays exactly the rounds an uninterrupted run would see."""

    def round(self, position: int, engine: Engine) -> Round: ...

    def data_state(self, position: int) -> dict[str, Any]: ...


def run_dir(config: ml_collections.ConfigDict, name: str) -> str:
    """`config.<name>.dir` when set, else `<workdir>/<name>`."""
    return config[name].dir or os.path.join(config.workdir, name)


def run(
    config: ml_collections.ConfigDict,
    engine: Engine,
    source: Source,
    *,
    rounds: int,
    desc: str,
    log_every: int = 1,
    evaluate: Callable[[int], dict[str, float]] | None = None,
    eval_every: int = 0,
) -> list[Record]:
    """Runs rounds `[resume point, rounds)` and returns the run's whole history (restored records included).

    `evaluate(position)` (held-out metrics of `engine.policy()` after `position` rounds) runs before the first
    round (position 0) and every
    `eval_every` rounds and at the end; its values are recorded as `eval/<name>`. A record is written every
    `log_every` rounds, at the end and with every evaluation. Checkpoints follow `config.checkpoint`.
    """
    checkpoints = Checkpointer(
        run_dir(config, "checkpoint"), every=config.checkpoint.every, keep=config.checkpoint.keep
    )
    try:  # before the metrics file opens: a refused resume leaves it untouched
        start, history = _restore(config, engine, source, checkpoints)
    except BaseException:
        checkpoints.close()
        raise
    writer = MetricsWriter(run_dir(config, "metrics"), tensorboard=config.metrics.tensorboard, history=history)
    bar = tqdm(total=rounds, initial=start, desc=desc, disable=not parallel.is_main_process())
    saved = start if start else None

    def record(position: int, values: Record) -> None:
        history.append({"step": position, **values})
        writer.write(position, values)

    try:
        if evaluate is not None and start == 0:
            record(0, _evaluated(evaluate, 0))
        for position in range(start, rounds):
            done = position + 1
            round_ = source.round(position, engine)
            clock = time.perf_counter()
            values = engine.run_round(round_)
            update_s = time.perf_counter() - clock
            values["time/update_s"] = update_s
            tokens = sum(int(b["attention_mask"].sum()) for b in round_.batches if "attention_mask" in b)
            values["tokens_per_s"] = tokens / max(update_s, 1e-9)
            evaluated = evaluate is not None and (done % max(eval_every, 1) == 0 or done == rounds)
            if evaluated:
                values.update(_evaluated(evaluate, done))
            if evaluated or done % log_every == 0 or done == rounds:
                record(done, values)
            _check_finite(values, done, config.nonfinite_max_in_a_row)
            if checkpoints.save(done, engine.state, source.data_state(done), history):
                saved = done
            bar.set_postfix(_describe(values, history), refresh=False)
            bar.update(1)
        if saved != rounds and rounds > 0:
            checkpoints.save(rounds, engine.state, source.data_state(rounds), history, force=True)
    finally:
        checkpoints.close()
        writer.close()
        bar.close()
    return history


def _restore(
    config: ml_collections.ConfigDict, engine: Engine, source: Source, checkpoints: Checkpointer
) -> tuple[int, list[Record]]:
    """Puts the latest checkpoint's state into `engine`; returns the position to continue from and the history."""
    latest = checkpoints.latest_step()
    if latest is None:
        return 0, []
    state, saved, history = checkpoints.restore(latest, engine.shardings, engine.abstract_state())
    expected = source.data_state(latest)
    if saved != expected:
        raise ValueError(
            f"checkpoint {latest} in {run_dir(config, 'checkpoint')} was written for data {saved}, but this run's "
            f"data is {expected}; use a new workdir or restore the original data settings"
        )
    engine.state = state
    return latest, history


def _evaluated(evaluate: Callable[[int], dict[str, float]], position: int) -> Record:
    clock = time.perf_counter()
    values = {f"eval/{k}": float(v) for k, v in evaluate(position).items()}
    values["time/eval_s"] = time.perf_counter() - clock
    return values


def _check_finite(values: Record, position: int, limit: int) -> None:
    in_a_row = int(values.get("nonfinite_in_a_row", 0))
    if in_a_row >= limit:
        raise NonFiniteError(
            f"round {position}: loss or gradient non-finite {in_a_row} steps in a row "
            f"(nonfinite_max_in_a_row={limit}); parameters are those of the last finite step. "
            f"Lower optimizer.learning_rate or check the data."
        )


def _describe(values: Record, history: list[Record]) -> dict[str, str]:
    """What the progress bar shows: loss, reward and all-wrong share when the trainer reports them, the latest
    held-out pass@1, tokens/s."""
    shown = {"loss": f"{values['loss']:.4f}"} if "loss" in values else {}
    for name, short in (("reward", "reward"), ("all_wrong_frac", "all_wrong")):
        if name in values:
            shown[short] = f"{values[name]:.2f}"
    evals = [r["eval/pass@1"] for r in history if "eval/pass@1" in r]
    if evals:
        shown["pass@1"] = f"{evals[-1]:.3f}"
    shown["tok/s"] = f"{values['tokens_per_s']:.0f}"
    return shown
