"""A real rollout from the sampler is laid out the way the trainer and SFT assume (the checks behind "is RL
collapsing because of a plumbing bug?"): group-major rows with the SFT prompt text, a loss mask on exactly the
sampled response tokens (EOS included), trainer log-probs equal to the sampler's on those tokens, and each reward
scored against its own row's response and reference."""

import jax
import numpy as np
import pytest

from nsa_jax import models, parallel, rollouts, tasks
from nsa_jax.train.core import make_scorer, split_model
from nsa_jax.train.sft import data

G, PROMPT_LEN, NEW = 4, 48, 24


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    """A one-layer random tiny model with the character tokenizer (plumbing, not learning)."""
    tiny = tmp_path_factory.mktemp("tiny")
    models.tiny_model_dir(tiny, seed=0)
    cfg = models.load_config(tiny).replace(num_hidden_layers=1, hidden_size=64, intermediate_size=128, head_dim=16)
    model = models.init_model(cfg, seed=0)
    return model, models.load_tokenizer(tiny)


def test_rollout_layout_matches_sft_and_the_trainer(policy):
    model, tokenizer = policy
    problems = tasks.get_task("arith").sample("train", 3, seed=0, difficulty=1)
    seen = {}

    def fake_reward(row_problems, responses):  # records what the reward function is asked, row by row
        seen["responses"], seen["references"] = list(responses), [p.answer for p in row_problems]
        return np.arange(len(responses)) % 2  # row-dependent rewards, to check they stay on their rows

    r = rollouts.collect(
        model,
        tokenizer,
        problems,
        group_size=G,
        prompt_fn=data.format_prompt,
        reward_fn=fake_reward,
        key=jax.random.PRNGKey(3),
        max_prompt_len=PROMPT_LEN,
        max_new_tokens=NEW,
        temperature=1.0,
        mesh=parallel.make_mesh(1, -1, 1),
    )
    eos = tokenizer.eos_token_id
    # The prompt SFT trains on: data.tokenize's prompt tokens for the same problem (same separator, no BOS).
    sft_rows = data.tokenize([(p.prompt, p.solution) for p in problems], tokenizer, 128)
    stopped = 0
    for i in range(len(r.rewards)):
        q = i // G  # group-major: rows q*G .. q*G+G-1 answer problem q
        prompt = r.input_ids[i, :PROMPT_LEN][r.attention_mask[i, :PROMPT_LEN] > 0]
        sft_prompt = sft_rows.input_ids[q][(sft_rows.attention_mask[q] > 0) & (sft_rows.loss_mask[q] == 0)]
        np.testing.assert_array_equal(prompt, sft_prompt)
        assert r.loss_mask[i, :PROMPT_LEN].sum() == 0
        on = r.loss_mask[i, PROMPT_LEN:] > 0
        n = int(on.sum())
        assert on[:n].all() and not on[n:].any(), "the response mask is one contiguous span from the first new token"
        np.testing.assert_array_equal(r.attention_mask[i, PROMPT_LEN:], on)
        response = r.input_ids[i, PROMPT_LEN : PROMPT_LEN + n]
        assert eos not in response[:-1], "nothing is sampled after EOS"
        if response[-1] == eos:
            stopped += 1  # EOS is inside the mask, so it is trained (as SFT trains it)
        else:
            assert n == NEW, "a response without EOS ran to the budget"
        assert seen["responses"][i] == tokenizer.decode(response.tolist(), skip_special_tokens=True)
        assert seen["references"][i] == problems[q].answer
        assert r.rewards[i] == i % 2
    assert stopped > 0, "this seed samples at least one EOS, so the EOS case is checked"

    # The trainer's log-prob of response token t (from the position before it) is the sampler's.
    graphdef, params = split_model(model)
    batch = {k: r.batch().tokens[k] for k in ("input_ids", "attention_mask", "loss_mask")}
    trainer = np.asarray(make_scorer(graphdef, chunk_size=64)(params, batch))
    on = r.loss_mask > 0
    np.testing.assert_allclose(trainer[on], r.sampler_logp[on], atol=1e-4)
    assert (trainer[~on] == 0).all() and (r.sampler_logp[~on] == 0).all()
