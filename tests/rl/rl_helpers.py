"""Shared pieces of the RL tests: a tiny random model, synthetic rollouts, an RL config on one device."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from configs import base
from configs.rl_presets import rl_defaults
from nsa_jax import models, tasks
from nsa_jax.models.tiny import TINY_DIR
from nsa_jax.rollouts import Batch, OfflineSet, Rollout
from nsa_jax.train.rl import RLUpdate, make_engine
from nsa_jax.train.sft import format_prompt
from tests.train.helpers import TINY

PROMPT, RESPONSE = 4, 6


def rl_config(loss: str, *, rows: int, micro_rows: int = 0, group_size: int = 4, **knobs) -> ml_collections.ConfigDict:
    """An RL config whose rollout of `rows` responses is one optimiser step (accumulated over `micro_rows`)."""
    c = rl_defaults(base.get_config())
    c.rl.loss = loss
    c.rl.loss_kwargs = ml_collections.ConfigDict(knobs)
    c.rl.group_size = group_size
    c.rl.prompts_per_rollout = rows // group_size
    c.batch_size = rows
    c.micro_batch_size = micro_rows
    c.optimizer.warmup_steps = 0
    c.optimizer.weight_decay = 0.0
    c.logprob_chunk_size = 16
    return base.lock(c)


def synthetic_rollout(rewards, group_size: int = 4, seed: int = 0) -> Rollout:
    """Random prompt/response tokens (prompt PROMPT tokens, responses of 2..RESPONSE tokens) with `rewards`."""
    rewards = np.asarray(rewards, np.float32)
    b, t = len(rewards), PROMPT + RESPONSE
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, RESPONSE + 1, b)
    resp = (np.arange(RESPONSE)[None] < lengths[:, None]).astype(np.int32)  # [B, N]
    attention = np.concatenate([np.ones((b, PROMPT), np.int32), resp], axis=1)
    ids = rng.integers(1, TINY.vocab_size, (b, t)).astype(np.int32) * attention
    loss_mask = np.concatenate([np.zeros((b, PROMPT), np.float32), resp.astype(np.float32)], axis=1)
    return Rollout(
        input_ids=ids,
        attention_mask=attention,
        loss_mask=loss_mask,
        sampler_logp=np.zeros((b, t), np.float32),
        rewards=rewards,
        difficulty=np.ones(b, np.int32),
        responses=[""] * b,
        group_size=group_size,
    )


def grouped_prompt_rollout(
    rewards,
    group_size: int = 4,
    prompt_budget: int = 6,
    seed: int = 0,
    *,
    response_budget: int = RESPONSE,
    vocab: int = TINY.vocab_size,
) -> Rollout:
    """A rollout laid out as `rollouts.collect` does: each group's prompt (1..prompt_budget tokens, left-padded to
    prompt_budget columns) repeated for its G responses (1..response_budget tokens, right-padded), token ids below
    `vocab`."""
    rewards = np.asarray(rewards, np.float32)
    b, q = len(rewards), len(rewards) // group_size
    rng = np.random.default_rng(seed)
    prompt_len = np.repeat(rng.integers(1, prompt_budget + 1, q), group_size)
    prompt = (np.arange(prompt_budget)[None] >= prompt_budget - prompt_len[:, None]).astype(np.int32)
    prompt_ids = np.repeat(rng.integers(1, vocab, (q, prompt_budget)), group_size, 0) * prompt
    resp = (np.arange(response_budget)[None] < rng.integers(1, response_budget + 1, b)[:, None]).astype(np.int32)
    resp_ids = rng.integers(1, vocab, (b, response_budget)) * resp
    return Rollout(
        input_ids=np.concatenate([prompt_ids, resp_ids], 1).astype(np.int32),
        attention_mask=np.concatenate([prompt, resp], 1),
        loss_mask=np.concatenate([np.zeros_like(prompt), resp], 1).astype(np.float32),
        sampler_logp=np.zeros((b, prompt_budget + response_budget), np.float32),
        rewards=rewards,
        difficulty=np.ones(b, np.int32),
        responses=[""] * b,
        group_size=group_size,
    )


def hand_policy_gradient(rollout, advantages, denominator=None) -> dict:
    """jax.grad of -sum(A_i * logp_it * mask) / denominator (default sum(mask)), logp from full float32 logits (not
    token_logprobs) of the whole rows of the rollout, from the seed-0 tiny model."""
    model = models.init_model(TINY, seed=0)
    graphdef, params = nnx.split(model, nnx.Param)
    ids, mask = jnp.asarray(rollout.input_ids), jnp.asarray(rollout.loss_mask)

    def loss(p):
        logits = nnx.merge(graphdef, p)(ids, attention_mask=jnp.asarray(rollout.attention_mask))  # [B, T, V]
        logp = jnp.take_along_axis(jax.nn.log_softmax(logits[:, :-1]), ids[:, 1:, None], axis=-1)[..., 0]
        total = -jnp.sum(advantages[:, None] * logp * mask[:, 1:])
        return total / (jnp.sum(mask[:, 1:]) if denominator is None else denominator)

    return nnx.to_pure_dict(jax.grad(loss)(params))


class Learner:
    """One RL update as the core loop runs it, `engine.run_round(update.round(batch, engine, seed))`, for tests that
    read the parameters before and after one rollout's update."""

    def __init__(self, config, model, mesh, *, total_steps: int, tx=None):
        self.engine = make_engine(config, model, mesh, total_steps=total_steps, tx=tx)
        self.rl_update = RLUpdate(config, self.engine)

    @property
    def state(self):
        return self.engine.state

    def update(self, rollout: Rollout, seed: int) -> dict:
        return self.engine.run_round(self.rl_update.round(rollout.batch(), self.engine, seed))

    def score(self, params, tokens: dict) -> np.ndarray:
        return self.rl_update.score(self.engine, params, Batch(tokens))


def learner_params(learner) -> dict:
    """The learner's current parameters as host numpy arrays."""
    return jax.tree.map(np.asarray, jax.device_get(learner.state.params))


def grpo_advantages(rewards, group_size: int, eps: float = 1e-6) -> np.ndarray:
    """numpy reference of GRPO's advantages: (r - group mean) / (group std with ddof 1 + eps), [B] float32."""
    r = np.asarray(rewards, np.float64).reshape(-1, group_size)
    std = r.std(axis=1, ddof=1, keepdims=True)
    return ((r - r.mean(axis=1, keepdims=True)) / (std + eps)).reshape(-1).astype(np.float32)


def one_layer_start(path) -> str:
    """A freshly initialised one-layer version of the built-in tiny model (width 64) with its character tokenizer,
    saved as an HF directory at `path`: plumbing, not learning; one layer keeps CPU compilation short."""
    cfg = models.load_config(TINY_DIR).replace(num_hidden_layers=1, hidden_size=64, intermediate_size=128, head_dim=16)
    return str(models.save_pretrained(models.init_model(cfg, seed=0), path, tokenizer_from=TINY_DIR))


def wrong_last_step(problem: tasks.Problem) -> str:
    """The canonical solution of a built-in arith problem with its last step's value and the answer changed: the
    steps before it stay correct (the ones BCPG-NSA mines), the answer is wrong."""
    *head, last_step, _ = problem.solution.split("\n")
    lhs, value = last_step.rsplit("=", 1)
    wrong = str(int(value) + 1)
    return "\n".join([*head, f"{lhs}= {wrong}", f"#### {wrong}"])


STORED_PROMPT, STORED_NEW, G = 56, 64, 4  # the stored sets' prompt / response widths and group size


def stored_set(tokenizer, groups: int = 4, respond=None, seed: int = 11) -> OfflineSet:
    """`groups` level-2 arith problems x G responses, tokenised with `tokenizer`; response k of a problem is
    `respond(problem, k)` (default: 2 canonical solutions, then 2 with a wrong last step), its reward the task's
    verifier; behaviour log-probs random."""
    task = tasks.get_task("arith")
    respond = respond or (lambda p, k: p.solution if k < 2 else wrong_last_step(p))
    problems = task.sample("train", groups, seed=seed, difficulty=2)
    rows, responses, rewards = [], [], []
    for p in problems:
        for k in range(G):
            text = respond(p, k)
            responses.append(text)
            rewards.append(task.verify(text, p))
            prompt = tokenizer.encode(format_prompt(p.prompt), add_special_tokens=False)
            answer = tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id]
            rows.append((prompt, answer))
    n, width = len(rows), STORED_PROMPT + STORED_NEW
    ids, attention = np.zeros((n, width), np.int32), np.zeros((n, width), np.int32)
    loss = np.zeros((n, width), np.float32)
    for i, (prompt, answer) in enumerate(rows):
        ids[i, STORED_PROMPT - len(prompt) : STORED_PROMPT] = prompt
        ids[i, STORED_PROMPT : STORED_PROMPT + len(answer)] = answer
        attention[i, STORED_PROMPT - len(prompt) : STORED_PROMPT + len(answer)] = 1
        loss[i, STORED_PROMPT : STORED_PROMPT + len(answer)] = 1.0
    logp_b = -np.random.default_rng(0).exponential(1.0, ids.shape).astype(np.float32) * loss
    tokens = {"input_ids": ids, "attention_mask": attention, "loss_mask": loss, "logp_b": logp_b}
    batch = Batch(tokens, {"rewards": np.asarray(rewards, np.float32)}, G)
    stats = {"prompts": groups, "dropped_all_right": 0, "dropped_all_wrong": 0, "kept": groups}
    return OfflineSet(batch, problems, responses, stats)
