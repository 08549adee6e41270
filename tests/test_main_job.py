"""The main job (`configs/demo.py`, the README's first command) at test size: SFT, every method from its export, the
judges, PNS's pairs and DPO, and the report with its plots; a rerun reproduces the report; a changed config for a
finished run is refused."""

import copy
import importlib
import json

import matplotlib.image
import numpy as np
import pytest

from nsa_jax import train
from tests.rl.rl_helpers import one_layer_start

ROWS = [
    "sft start",
    "grpo",
    "lens",
    "nsr",
    "rft",
    "bcpg",
    "bcpg_nsa",
    "grpo_offline",
    "topr",
    "dpo_pns",
    "dpo_rejection",
]


def shrunk(config, start: str, workdir: str):
    """The quick pipeline shrunk, a few rollouts and steps per method. Every training stage draws its problems from
    the same 32 (data seed 0, level 1), which a one-layer start memorises in 200 SFT steps: so the stored sets hold
    mixed groups and the pair files correct answers (on fresh problems the start is nearly always wrong)."""
    config.workdir = workdir
    p = config.quick
    p.sft.model.path, p.sft.max_steps, p.sft.optimizer.learning_rate, p.sft.checkpoint.every = start, 200, 1e-2, 200
    p.sft.data.num_examples = 32
    for c in [*p.online.values(), p.preference.generator]:
        c.data.num_examples = 32
    p.judges.prm.data.seed = p.judges.llm_judge.data.seed = p.preference.pairs.pns.seed = 0
    p.eval.update({"num_problems": 4, "samples": 4, "ks": (1, 2, 4), "batch_size": 4, "max_new_tokens": 48})
    for c in p.online.values():
        c.rl.num_rollouts, c.rl.prompts_per_rollout, c.rl.group_size, c.rl.max_new_tokens = 2, 4, 4, 48
        c.batch_size, c.eval.every = 16, 1
    sets = [p.judges.prm, p.judges.llm_judge, *p.offline.values()]
    for c in sets:
        c.offline.num_prompts, c.offline.samples_per_prompt, c.offline.prompts_per_call = 32, 8, 32
        c.rl.max_new_tokens, c.batch_size, c.offline.epochs = 48, 32, 1
    # Half the prompts held out by the PRM, the LLM judge and the RM (the configs keep 0.2): the shrunk sets hold only
    # about 8 groups with a wrong answer, and at 0.2 the prompt hash leaves none of them held out for about one draw
    # in six of the start (0.8 ** 8), which any change in float summation order can draw. At 0.5 an empty side has
    # odds of 2 * 0.5 ** 8, under 1%. The PRM trains one group (8 rows) per step, so the ~4 groups left for training
    # always fill a step (at 32 rows, 4 groups, a training side of 3 was refused).
    p.judges.prm.prm.epochs, p.judges.prm.prm.heldout_frac, p.preference.rm.rm.heldout_frac = 1, 0.5, 0.5
    p.judges.prm.batch_size = 8
    p.judges.llm_judge.judge.update({"steps": 4, "batch_size": 16, "heldout_frac": 0.5})
    p.judges.llm_judge.batch_size = 8
    p.offline.bcpg_nsa.offline.llm_judge_batch_size = 16
    p.preference.rm.rm.epochs, p.preference.rm.batch_size = 1, 8
    g = p.preference.generator
    g.rl.num_rollouts, g.rl.prompts_per_rollout, g.rl.group_size, g.rl.max_new_tokens, g.batch_size = 1, 4, 4, 48, 16
    p.preference.pairs.pns.update({"num_prompts": 32, "samples": 8, "prompts_per_call": 32})
    p.preference.pairs.rl.max_new_tokens = 48
    for c in p.preference.dpo.values():
        c.dpo.epochs, c.batch_size = 1, 8
    return config


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    root = tmp_path_factory.mktemp("main")
    config = shrunk(importlib.import_module("configs.demo").get_config(), one_layer_start(root / "m"), str(root))
    text = train.get_trainer(config.trainer)(config)
    return config, root / "quick", text


def test_report_has_every_method_its_judges_and_plots(job):
    config, out, text = job
    assert (out / "report.md").read_text(encoding="utf-8") == text
    table = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")]
    assert [r for r in table if r in ROWS] == ROWS
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    rows = results["rows"]
    assert list(rows) == ROWS
    p = config.quick
    online, offline = p.online.grpo.rl, p.offline.bcpg.offline
    assert rows["grpo"]["responses"] == online.num_rollouts * online.prompts_per_rollout * online.group_size
    assert rows["topr"]["responses"] == offline.num_prompts * offline.samples_per_prompt
    for name in ROWS:
        for k in (1, 2, 4):
            for key in (f"pass@{k}", f"pass@{k}/d1", f"pass@{k}/d2"):
                assert 0.0 <= rows[name][key] <= 1.0, (name, key)
        if name != "sft start":
            assert rows[name]["gain/pass@1/low"] <= rows[name]["gain/pass@1"] <= rows[name]["gain/pass@1/high"]
    # The judge report covers every mode against the ground truth; the consensus mines no more than either judge.
    (judged,) = results["judges"]
    assert {"oracle", "prm", "llm", "consensus", "or"} <= set(judged)
    assert judged["consensus"]["mined_tokens"] <= min(judged["prm"]["mined_tokens"], judged["llm"]["mined_tokens"])
    assert "| consensus |" in text and "| pns |" in text and "| rejection |" in text
    for pair in config.quick.comparisons:  # each paper's method against its baseline
        assert f"| {pair.replace('-', ' - ')} |" in text
    for name in ("pass1_vs_responses.png", "pass_at_k.png", "judges.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300
        assert image[..., :3].std() > 0.05, name  # something is drawn


def test_every_method_starts_from_the_one_start_evaluation(job):
    _, out, _ = job
    with np.load(out / "start" / "heldout" / "round_000000.npz") as f:
        start = f["correct"]
    for name in ROWS[1:]:
        with np.load(out / "seed_0" / name / "heldout" / "round_000000.npz") as f:
            np.testing.assert_array_equal(f["correct"], start, err_msg=name)


def test_rerun_reproduces_the_report_and_refuses_a_changed_finished_run(job):
    config, out, text = job
    pngs = {name: (out / name).read_bytes() for name in ("pass1_vs_responses.png", "pass_at_k.png", "judges.png")}
    results = (out / "results.json").read_text(encoding="utf-8")
    assert train.get_trainer(config.trainer)(config) == text
    assert (out / "results.json").read_text(encoding="utf-8") == results
    assert {name: (out / name).read_bytes() for name in pngs} == pngs
    changed = copy.deepcopy(config)
    changed.quick.online.lens.rl.loss_kwargs.alpha = 0.5
    with pytest.raises(ValueError, match="another config"):
        train.get_trainer(changed.trainer)(changed)
