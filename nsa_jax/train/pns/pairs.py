"""PNS preference pairs (`config.trainer = "pns_pairs"`): the three sources of negatives on the same prompts, written
as DPO pair files, with the plausibility report of each source.

`pns.num_prompts` training problems (drawn with `pns.seed`, so other prompts than the generator's and the reward
model's if those seeds differ), `pns.samples` responses each from the policy (`model.path`) and from the negative
generator (`pns.generator_dir`), verified. The policy's correct responses are the chosen ones; its wrong ones the
rejection-sampled negatives; the generator's wrong ones the PNS negatives; a wrong answer of the policy to another
prompt the random negatives (`pns.negatives`). Only prompts every source can serve are kept, so the three files hold
the same prompts and chosen responses:
- `<workdir>/pairs_<source>.jsonl` (`{"prompt", "chosen", "rejected"}` lines: `dpo.pairs` reads them);
- `<workdir>/plausibility.json`: per source, format pass rate, reward-model score of the negatives against the
  correct answers' (the reward model in `pns.rm_dir`), share of correct steps before the first error, length.
A finished run (every file present) is not redone.
"""

from __future__ import annotations

import json
import os

import jax
import ml_collections

from nsa_jax import models, parallel, pns, rollouts
from nsa_jax.train.core import load_policy
from nsa_jax.train.rl.heldout import problems_by_level
from nsa_jax.train.rl.trainer import TaskSetting


def sample(config: ml_collections.ConfigDict, setting: TaskSetting, model, problems, seed: int):
    """`pns.samples` verified responses per problem from `model`, `pns.prompts_per_call` problems a call:
    (correct, wrong) per problem."""
    p, rl = config.pns, config.rl
    right, wrong = [], []
    for start in range(0, len(problems), p.prompts_per_call):
        chunk = problems[start : start + p.prompts_per_call]
        r = rollouts.collect(
            model,
            setting.tokenizer,
            chunk,
            group_size=p.samples,
            prompt_fn=setting.prompt_fn,
            reward_fn=setting.verifier,
            key=jax.random.fold_in(jax.random.PRNGKey(seed), start),
            max_new_tokens=rl.max_new_tokens,
            temperature=rl.temperature,
            max_prompt_len=rl.max_prompt_len,
            mesh=setting.mesh,
        )
        a, b = pns.split_by_rewards(r.responses, r.rewards, p.samples)
        right, wrong = right + a, wrong + b
    return right, wrong


def train(config: ml_collections.ConfigDict) -> dict[str, dict[str, float]]:
    """Writes the pair files and the plausibility report; returns the report."""
    p = config.pns
    report_path = os.path.join(config.workdir, "plausibility.json")
    if os.path.isfile(report_path) and all(
        os.path.isfile(os.path.join(config.workdir, f"pairs_{s}.jsonl")) for s in pns.SOURCES
    ):
        with open(report_path, encoding="utf-8") as f:
            return json.load(f)
    if not p.generator_dir or not p.rm_dir:
        raise ValueError("pns.generator_dir and pns.rm_dir must name the generator's and the reward model's dirs")
    setting = TaskSetting(config)
    problems = problems_by_level(setting.task, "train", p.difficulties, p.num_prompts // len(p.difficulties), p.seed)
    chosen, rejection = sample(config, setting, load_policy(config, setting.mesh, setting.path), problems, p.seed)
    _, generated = sample(config, setting, load_policy(config, setting.mesh, p.generator_dir), problems, p.seed + 1)
    negatives = {"pns": generated, "rejection": rejection, "random": pns.random_negatives(rejection, p.seed)}
    pairs = pns.build_pairs(problems, chosen, negatives)
    models.check_same_vocabulary(p.rm_dir, setting.tokenizer, "reward model")
    scorer = pns.RewardModelScorer(
        models.from_pretrained_head(p.rm_dir),
        setting.tokenizer,
        prompt_fn=setting.prompt_fn,
        width=config.rl.max_prompt_len + config.rl.max_new_tokens + 1,
        rows=p.score_rows,
    )
    by_prompt = {q.prompt: q for q in problems}
    report = {s: pns.plausibility(setting.task, pairs[s], by_prompt, scorer, style=p.format_style) for s in pairs}
    report["counts"] = {
        "prompts": float(len(problems)),
        "with_correct": float(sum(1 for c in chosen if c)),
        "with_pns_negative": float(sum(1 for g in generated if g)),
        "with_rejection_negative": float(sum(1 for r in rejection if r)),
    }

    def write() -> None:
        os.makedirs(config.workdir, exist_ok=True)
        for source, rows in pairs.items():
            path = os.path.join(config.workdir, f"pairs_{source}.jsonl")
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                f.writelines(json.dumps(x) + "\n" for x in rows)
            os.replace(path + ".tmp", path)
        with open(report_path, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)

    parallel.main_process_first("pns_pairs", write)
    return report
