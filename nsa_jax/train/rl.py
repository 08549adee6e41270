"""Online RL trainer (`config.trainer = "rl"`): sample, verify, update, evaluate; one loop for every method.

Each rollout: `Q = rl.prompts_per_rollout` training problems (a seeded draw from a fixed pool, so a resumed run sees
the same prompts), `G = rl.group_size` responses each from the in-JAX sampler, scored by the task verifier; then
`Learner.update` runs the PPO epochs with the loss registered under `rl.loss`. GRPO, Dr.GRPO, LENS, NSR, PSR,
W-REINFORCE, NGRPO and RFT differ only in `rl.loss` and `rl.loss_kwargs` (RFT's loss keeps the correct responses
and is token NLL on them: sample, keep correct, SFT). Held-out pass@k by difficulty runs every `eval.every`
rollouts. Checkpoints are taken between rollouts (`checkpoint.every` counts rollouts) and resumed automatically.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import numpy as np
from flax import nnx
from tqdm import tqdm

from nsa_jax import models, parallel, tasks
from nsa_jax.train import rl_eval, rollout
from nsa_jax.train.checkpoint import Checkpointer
from nsa_jax.train.data import format_prompt
from nsa_jax.train.loop import run_dir
from nsa_jax.train.metrics import MetricsWriter
from nsa_jax.train.policy import export_policy, load_policy, model_dir, set_params
from nsa_jax.train.rl_update import Learner, steps_per_rollout

# How a problem's text becomes the prompt the policy sees, by `rl.prompt_format`.
PROMPT_FORMATS: dict[str, Callable[[Any], Callable[[str], str]]] = {
    "plain": lambda tokenizer: format_prompt,
    "chat": lambda tokenizer: functools.partial(tasks.chat_prompt, tokenizer=tokenizer, style="hash"),  # GSM8K
    "chat-boxed": lambda tokenizer: functools.partial(tasks.chat_prompt, tokenizer=tokenizer, style="boxed"),  # MATH
}


def make_task(config: ml_collections.ConfigDict) -> Any:
    """The task `data.task`; file-backed tasks ("gsm8k", "math") read `data.dir`."""
    if config.data.task in ("gsm8k", "math"):
        if not config.data.dir:
            raise FileNotFoundError(f"data.task={config.data.task!r} needs data.dir (a local JSONL folder)")
        return tasks.get_task(config.data.task, source_dir=config.data.dir)
    return tasks.get_task(config.data.task)


def rollout_problems(pool: list[tasks.Problem], index: int, count: int, seed: int) -> list[tasks.Problem]:
    """The problems of rollout `index`: a function of `(seed, index)` only, so resuming replays the same ones."""
    picked = np.random.default_rng([seed, index]).choice(len(pool), size=count, replace=len(pool) < count)
    return [pool[i] for i in picked]


class RLRun:
    """The pieces of one RL run that the rollout, update and evaluation steps share."""

    def __init__(self, config: ml_collections.ConfigDict):
        rl = config.rl
        if rl.prompt_format not in PROMPT_FORMATS:
            raise ValueError(f"rl.prompt_format={rl.prompt_format!r} is not one of {sorted(PROMPT_FORMATS)}")
        self.config = config
        self.path = model_dir(config)
        self.tokenizer = models.load_tokenizer(self.path)
        self.prompt_fn = PROMPT_FORMATS[rl.prompt_format](self.tokenizer)
        self.task = make_task(config)
        levels = rl.train_difficulties or (config.data.difficulty,)
        self.pool = rl_eval.problems_by_level(
            self.task, "train", levels, config.data.num_examples // len(levels), config.data.seed
        )
        self.mesh = parallel.make_mesh(config.mesh.data, config.mesh.fsdp, config.mesh.tensor)
        self.model = load_policy(config, self.mesh, self.path)
        self.learner = Learner(config, self.model, self.mesh, total_steps=rl.num_rollouts * steps_per_rollout(config))
        self.eval_problems = (
            rl_eval.problems_by_level(
                self.task, "test", config.eval.difficulties, config.eval.num_problems, config.eval.seed
            )
            if config.eval.enabled
            else []
        )
        self.sample_kwargs = {"max_prompt_len": rl.max_prompt_len, "mesh": self.mesh}

    def policy(self) -> nnx.Module:
        """The model holding the current parameters (the train step donates the state, so set them each time)."""
        set_params(self.model, self.learner.state.params)
        return self.model

    def rollout(self, index: int) -> rollout.Rollout:
        rl = self.config.rl
        return rollout.collect(
            self.policy(),
            self.tokenizer,
            rollout_problems(self.pool, index, rl.prompts_per_rollout, self.config.data.seed),
            group_size=rl.group_size,
            prompt_fn=self.prompt_fn,
            verify_deadline_s=rl.verify_deadline_s,
            key=jax.random.fold_in(jax.random.PRNGKey(self.config.seed), index),
            max_new_tokens=rl.max_new_tokens,
            temperature=rl.temperature,
            top_k=rl.top_k,
            top_p=rl.top_p,
            **self.sample_kwargs,
        )

    def evaluate(self) -> dict[str, float]:
        e = self.config.eval
        return rl_eval.evaluate(
            self.policy(),
            self.tokenizer,
            self.eval_problems,
            samples=e.samples,
            ks=e.ks,
            batch_size=e.batch_size,
            key=jax.random.PRNGKey(e.seed),
            prompt_fn=self.prompt_fn,
            max_new_tokens=e.max_new_tokens,
            temperature=e.temperature,
            verify_deadline_s=self.config.rl.verify_deadline_s,
            **self.sample_kwargs,
        )


def _data_state(config: ml_collections.ConfigDict, index: int) -> dict[str, Any]:
    """What decides the prompts of every rollout: a resume with different values would replay other prompts."""
    rl = config.rl
    return {
        "rollout": index,
        "seed": config.data.seed,
        "task": config.data.task,
        "pool": config.data.num_examples,
        "levels": list(rl.train_difficulties or (config.data.difficulty,)),
        "prompts": rl.prompts_per_rollout,
        "group_size": rl.group_size,
    }


def _restore(job: RLRun, checkpoints: Checkpointer) -> int:
    """Restores the latest checkpoint into the learner; returns the rollout index to continue from."""
    latest = checkpoints.latest_step()
    if latest is None:
        return 0
    learner = job.learner
    like = jax.eval_shape(learner.new_state, learner.state.params)
    learner.state, saved = checkpoints.restore(latest, learner.shardings, like)
    if saved != _data_state(job.config, latest):
        raise ValueError(f"checkpoint {latest} was written for data {saved}; use a new workdir or restore the settings")
    return latest


def train(config: ml_collections.ConfigDict) -> nnx.Module:
    """The trainer registered as "rl": `train_and_report` without the summary."""
    return train_and_report(config)[0]


def train_and_report(config: ml_collections.ConfigDict) -> tuple[nnx.Module, dict[str, float]]:
    """Runs `rl.num_rollouts` rollout/update rounds; returns the trained policy and a summary (the held-out
    evaluation at the start, prefixed "start/", and at the end, and the run's mean share of all-wrong / all-right
    groups), also written to `<workdir>/eval_rl.json`.
    Metrics of every rollout go to `<workdir>/metrics/metrics.jsonl`."""
    job = RLRun(config)
    rl, e = config.rl, config.eval
    outcomes: list[dict[str, float]] = []
    checkpoints = Checkpointer(
        run_dir(config, "checkpoint"), every=config.checkpoint.every, keep=config.checkpoint.keep
    )
    try:
        start = _restore(job, checkpoints)  # before the metrics file opens: a refused resume leaves it untouched
    except BaseException:
        checkpoints.close()
        raise
    writer = MetricsWriter(run_dir(config, "metrics"), tensorboard=config.metrics.tensorboard)
    bar = tqdm(total=rl.num_rollouts, initial=start, desc=rl.loss, disable=not parallel.is_main_process())
    evaluation: dict[str, float] = {}
    initial: dict[str, float] = {}
    try:
        if e.enabled and start == 0:
            evaluation = initial = job.evaluate()
            writer.write(0, {f"eval/{k}": v for k, v in evaluation.items()})
        for index in range(start, rl.num_rollouts):
            clock = time.perf_counter()
            batch = job.rollout(index)
            sampled = time.perf_counter()
            metrics = {
                **rollout.group_outcomes(batch.rewards, rl.group_size),
                "response_tokens": float(batch.loss_mask.sum(axis=1).mean()),
                **job.learner.update(batch, seed=config.seed * 1_000_003 + index),
            }
            # Wall seconds of each phase (both end on host values, so the device work is inside them).
            metrics["time/rollout_s"] = sampled - clock
            metrics["time/update_s"] = time.perf_counter() - sampled
            outcomes.append({k: metrics[k] for k in ("reward", "all_wrong_frac", "all_right_frac")})
            done = index + 1
            if e.enabled and (done % e.every == 0 or done == rl.num_rollouts):
                clock = time.perf_counter()
                evaluation = job.evaluate()
                metrics.update({f"eval/{k}": v for k, v in evaluation.items()})
                metrics["time/eval_s"] = time.perf_counter() - clock
            writer.write(done, metrics)
            checkpoints.save(done, job.learner.state, _data_state(config, done), force=done == rl.num_rollouts)
            shown = {"reward": f"{metrics['reward']:.2f}", "all_wrong": f"{metrics['all_wrong_frac']:.2f}"}
            if evaluation:
                shown["pass@1"] = f"{evaluation['pass@1']:.3f}"
            bar.set_postfix(shown, refresh=False)
            bar.update(1)
    finally:
        checkpoints.close()
        writer.close()
        bar.close()
    model = job.policy()
    summary = {f"mean_{k}": float(np.mean([o[k] for o in outcomes])) for k in outcomes[0]} if outcomes else {}
    summary.update({f"start/{k}": v for k, v in initial.items()})
    summary.update(evaluation)
    if parallel.is_main_process():
        os.makedirs(config.workdir, exist_ok=True)
        with open(os.path.join(config.workdir, "eval_rl.json"), "w", encoding="utf-8") as f:
            json.dump({"method": rl.loss, "rollouts": rl.num_rollouts, **summary}, f, indent=2)
    if config.export.enabled:
        export_policy(model, run_dir(config, "export"), tokenizer_from=job.path)
    return model, summary
