"""Online RL trainer (`config.trainer = "rl"`): sample, reward, update, evaluate, on the core's one loop.

Each round is one rollout: `Q = rl.prompts_per_rollout` training problems (a seeded draw from a fixed pool, so a
resumed run sees the same prompts), `G = rl.group_size` responses each from the in-JAX sampler, scored by the reward
function (the task's verifier); then `RLUpdate` turns it into the PPO epochs of mini-batch steps with the loss
registered under `rl.loss`. GRPO, Dr.GRPO, LENS, NSR, PSR, W-REINFORCE, NGRPO and RFT differ only in `rl.loss` and
`rl.loss_kwargs` (RFT's loss keeps the correct responses and is token NLL on them: sample, keep correct, SFT).
Held-out pass@k by difficulty runs before the first rollout and every `eval.every` rollouts. Checkpoints are taken
between rollouts (`checkpoint.every` counts rollouts) and resumed automatically.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging
from flax import nnx

from nsa_jax import models, parallel, rollouts, tasks
from nsa_jax.train.core import Engine, Round, export_policy, load_policy, model_dir, run, run_dir
from nsa_jax.train.rl import heldout
from nsa_jax.train.rl.update import RLUpdate, make_engine, steps_per_rollout
from nsa_jax.train.sft.data import format_prompt

# How a problem's text becomes the prompt the policy sees, by `rl.prompt_format`.
PROMPT_FORMATS: dict[str, Callable[[Any], Callable[[str], str]]] = {
    "plain": lambda tokenizer: format_prompt,
    "chat": lambda tokenizer: functools.partial(tasks.chat_prompt, tokenizer=tokenizer, style="hash"),  # GSM8K
    "chat-boxed": lambda tokenizer: functools.partial(tasks.chat_prompt, tokenizer=tokenizer, style="boxed"),  # MATH
}
# The run's summary: means over rollouts of these per-rollout metrics (exact shares of the whole rollout).
OUTCOMES = ("reward", "all_wrong_frac", "all_right_frac")


class TaskSetting:
    """What every trainer of a policy on a verifiable task shares (online RL, the offline methods): the policy's
    directory and tokenizer, the prompt format (`rl.prompt_format`), the task and its reward function (the task's
    verifier unless given), the mesh, and the held-out evaluation (`eval.*`, pass@k by difficulty)."""

    def __init__(self, config: ml_collections.ConfigDict, reward_fn: rollouts.RewardFn | None = None):
        rl, e = config.rl, config.eval
        if rl.prompt_format not in PROMPT_FORMATS:
            raise ValueError(f"rl.prompt_format={rl.prompt_format!r} is not one of {sorted(PROMPT_FORMATS)}")
        self.config = config
        self.path = model_dir(config)
        self.tokenizer = models.load_tokenizer(self.path)
        self.prompt_fn = PROMPT_FORMATS[rl.prompt_format](self.tokenizer)
        self.task = make_task(config)
        self.verifier = rollouts.verifier_reward(self.task, deadline_s=rl.verify_deadline_s)
        self.reward_fn = reward_fn or self.verifier  # training's; held-out evaluation always verifies
        self.mesh = parallel.make_mesh(config.mesh.data, config.mesh.fsdp, config.mesh.tensor)
        self.eval_problems = (
            heldout.problems_by_level(self.task, "test", e.difficulties, e.num_problems, e.seed) if e.enabled else []
        )

    def evaluate(self, model: nnx.Module, position: int | None = None) -> dict[str, float]:
        """Held-out pass@k of `model` by difficulty, with the same sampling keys on every call. With `position`
        (rounds done), the per-problem results also go to `heldout_path(position)` for paired comparisons. At
        position 0 with `eval.start_from` set (a file this evaluation wrote for the same start policy), the start's
        results are read from it instead of sampled again: several runs from one start share one evaluation."""
        e = self.config.eval
        levels = [p.difficulty for p in self.eval_problems]
        if position == 0 and e.start_from:
            correct, _ = heldout.load_correct(e.start_from, self.fingerprint())
        else:
            correct = self.sample_correct(model)
        if position is not None and parallel.is_main_process():
            heldout.save_correct(self.heldout_path(position), correct, levels, self.fingerprint())
        return heldout.metrics(correct, levels, e.ks)

    def sample_correct(self, model: nnx.Module) -> np.ndarray:
        """`heldout.sample_correct` of `model` on the evaluation's problems, with its sampling settings."""
        e = self.config.eval
        return heldout.sample_correct(
            model,
            self.tokenizer,
            self.eval_problems,
            samples=e.samples,
            batch_size=e.batch_size,
            key=jax.random.PRNGKey(e.seed),
            prompt_fn=self.prompt_fn,
            reward_fn=self.verifier,
            max_new_tokens=e.max_new_tokens,
            temperature=e.temperature,
            max_prompt_len=self.config.rl.max_prompt_len,
            mesh=self.mesh,
        )

    def fingerprint(self) -> str:
        """A digest of what decides the held-out results of a given policy: the problems, the prompt format and
        the sampling settings."""
        e, rl = self.config.eval, self.config.rl
        what = [[p.prompt, p.answer] for p in self.eval_problems]
        what += [e.samples, e.seed, e.temperature, e.max_new_tokens, e.batch_size, rl.max_prompt_len, rl.prompt_format]
        return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:16]

    def heldout_path(self, position: int) -> str:
        return os.path.join(self.config.workdir, "heldout", f"round_{position:06d}.npz")

    def gains(self, history: list[dict[str, float]]) -> dict[str, float]:
        """`heldout.paired_gains` of the run's last held-out evaluation over its first (`{}` without two)."""
        positions = [r["step"] for r in history if any(k.startswith("eval/") for k in r)]
        paths = [self.heldout_path(int(p)) for p in positions[:1] + positions[-1:]]
        if len(positions) < 2 or not all(os.path.exists(p) for p in paths):
            return {}
        return heldout.paired_gains(*paths, self.config.eval.ks)


def make_task(config: ml_collections.ConfigDict) -> Any:
    """The task `data.task`; file-backed tasks ("gsm8k", "math") read `data.dir`, prepared (TFDS) by process 0
    while the other processes wait, then opened by all."""
    if config.data.task in ("gsm8k", "math"):
        if not config.data.dir:
            raise FileNotFoundError(f"data.task={config.data.task!r} needs data.dir (a local JSONL folder)")
        task = tasks.get_task(config.data.task, source_dir=config.data.dir)
        parallel.main_process_first("prepare_data", lambda: [task.source(split) for split in ("train", "test")])
        return task
    return tasks.get_task(config.data.task)


def check_rewards(rewards: np.ndarray, index: int, low: float, high: float) -> None:
    """A non-finite reward, or one outside `[low, high]`, is an error naming the rollout and the row (a broken
    reward function would otherwise show up as a string of skipped non-finite steps, or silently train)."""
    bad = np.flatnonzero(~np.isfinite(rewards) | (rewards < low) | (rewards > high))
    if bad.size:
        row = int(bad[0])
        raise ValueError(
            f"rollout {index}: reward {float(rewards[row])} of row {row} (and {bad.size - 1} more) is not a finite value "
            f"in [rl.reward_min, rl.reward_max] = [{low}, {high}]"
        )


def verifier_counts(before: tasks.VerifyStats, after: tasks.VerifyStats) -> dict[str, float]:
    """The verifier's outcomes during one rollout: answers checked, no answer, timed out, crashed, errors."""
    names = ("items", "no_answer", "timeouts", "crashes", "errors")
    return {f"verify/{n}": float(getattr(after, n) - getattr(before, n)) for n in names}


def rollout_problems(pool: list[tasks.Problem], index: int, count: int, seed: int) -> list[tasks.Problem]:
    """The problems of rollout `index`: a function of `(seed, index)` only, so resuming replays the same ones."""
    picked = np.random.default_rng([seed, index]).choice(len(pool), size=count, replace=len(pool) < count)
    return [pool[i] for i in picked]


class RLRun:
    """One RL run's pieces, and the loop's `Source`: round `index` samples rollout `index` with the engine's
    current policy and returns its update steps."""

    def __init__(self, config: ml_collections.ConfigDict, reward_fn: rollouts.RewardFn | None = None):
        rl = config.rl
        self.config = config
        self.setting = TaskSetting(config, reward_fn)
        self.tokenizer, self.task, self.mesh = self.setting.tokenizer, self.setting.task, self.setting.mesh
        levels = rl.train_difficulties or (config.data.difficulty,)
        self.pool = heldout.problems_by_level(
            self.task, "train", levels, config.data.num_examples // len(levels), config.data.seed
        )
        model = load_policy(config, self.mesh, self.setting.path)
        self.engine = make_engine(config, model, self.mesh, total_steps=rl.num_rollouts * steps_per_rollout(config))
        self.update = RLUpdate(config, self.engine)

    def rollout(self, index: int) -> rollouts.Rollout:
        rl = self.config.rl
        return rollouts.collect(
            self.engine.policy(),
            self.tokenizer,
            rollout_problems(self.pool, index, rl.prompts_per_rollout, self.config.data.seed),
            group_size=rl.group_size,
            prompt_fn=self.setting.prompt_fn,
            reward_fn=self.setting.reward_fn,
            key=jax.random.fold_in(jax.random.PRNGKey(self.config.seed), index),
            max_new_tokens=rl.max_new_tokens,
            temperature=rl.temperature,
            top_k=rl.top_k,
            top_p=rl.top_p,
            max_prompt_len=rl.max_prompt_len,
            mesh=self.mesh,
        )

    def round(self, index: int, engine: Engine) -> Round:
        rl = self.config.rl
        clock, verified = time.perf_counter(), tasks.verifier_stats()
        batch = self.rollout(index)
        sampled = time.perf_counter() - clock
        check_rewards(batch.rewards, index, rl.reward_min, rl.reward_max)
        counts = verifier_counts(verified, tasks.verifier_stats())  # process 0's: the one that verifies
        if counts["verify/timeouts"] > rl.verify_warn_timeout_frac * max(counts["verify/items"], 1):
            logging.warning(
                "rollout %d: %d of %d answers timed out in the verifier (scored 0); raise rl.verify_deadline_s",
                index,
                counts["verify/timeouts"],
                counts["verify/items"],
            )
        round_ = self.update.round(batch.batch(), engine, seed=self.config.seed * 1_000_003 + index)
        round_.metrics.update(
            rollouts.group_outcomes(batch.rewards, batch.group_size),
            **counts,
            response_tokens=float(batch.loss_mask.sum(axis=1).mean()),
            **{"time/rollout_s": sampled},
        )
        return round_

    def data_state(self, index: int) -> dict[str, Any]:
        """What decides the prompts of every rollout: a resume with different values would replay other prompts."""
        c, rl = self.config, self.config.rl
        return {
            "rollout": index,
            "seed": c.data.seed,
            "task": c.data.task,
            "pool": c.data.num_examples,
            "levels": list(rl.train_difficulties or (c.data.difficulty,)),
            "prompts": rl.prompts_per_rollout,
            "group_size": rl.group_size,
        }

    def evaluate(self, position: int | None = None) -> dict[str, float]:
        return self.setting.evaluate(self.engine.policy(), position)


def summarize(history: list[dict[str, float]]) -> dict[str, float]:
    """The run's summary from its whole history: the mean over rollouts of each of `OUTCOMES` (`mean_<name>`), the
    held-out evaluation before the first rollout (`start/<metric>`) and the last one (`<metric>`)."""
    rounds = [r for r in history if r["step"] > 0 and "reward" in r]
    summary = {f"mean_{k}": float(np.mean([r[k] for r in rounds])) for k in OUTCOMES} if rounds else {}
    evals = [r for r in history if any(k.startswith("eval/") for k in r)]
    if evals and evals[0]["step"] == 0:
        summary.update({f"start/{k[5:]}": v for k, v in evals[0].items() if k.startswith("eval/")})
    if evals:
        summary.update({k[5:]: v for k, v in evals[-1].items() if k.startswith("eval/")})
    return summary


def train(config: ml_collections.ConfigDict) -> nnx.Module:
    """The trainer registered as "rl": `train_and_report` without the summary."""
    return train_and_report(config)[0]


def train_and_report(
    config: ml_collections.ConfigDict, reward_fn: rollouts.RewardFn | None = None
) -> tuple[nnx.Module, dict[str, float]]:
    """Runs `rl.num_rollouts` rollout/update rounds; returns the trained policy and the run's summary
    (`summarize`), also written to `<workdir>/eval_rl.json`. Metrics of every rollout go to
    `<workdir>/metrics/metrics.jsonl`. A resumed or repeated run reports the same summary as an uninterrupted one:
    it is computed from the history the checkpoints carry. `reward_fn` replaces the task's verifier as the reward
    (PNS's generator); the held-out evaluation always verifies."""
    job = RLRun(config, reward_fn)
    e = config.eval
    history = run(
        config,
        job.engine,
        job,
        rounds=config.rl.num_rollouts,
        desc=config.rl.loss,
        evaluate=job.evaluate if e.enabled else None,
        eval_every=e.every,
    )
    summary = {**summarize(history), **job.setting.gains(history)}
    if parallel.is_main_process():
        os.makedirs(config.workdir, exist_ok=True)
        with open(os.path.join(config.workdir, "eval_rl.json"), "w", encoding="utf-8") as f:
            json.dump({"method": config.rl.loss, "rollouts": config.rl.num_rollouts, **summary}, f, indent=2)
    model = job.engine.policy()
    if config.export.enabled:
        export_policy(model, run_dir(config, "export"), tokenizer_from=job.setting.path)
    return model, summary
