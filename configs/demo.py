"""The main job: the miniature of all three papers on a 2-core CPU with no download. SFT the built-in tiny model on
the built-in arith task; then, from that same start and with the same number of sampled responses per method,
online GRPO, LENS, NSR and RFT; offline on one stored set BCPG, BCPG-NSA (the PRM and LLM judges' consensus),
GRPO-offline and TOPR; DPO with PNS negatives and with rejection-sampled negatives. Writes
`<workdir>/<scale>/report.md` (table, judge report, plausibility report, PNG plots) and prints the table.

python -m nsa_jax.main --config=configs/demo.py                     (scale "quick": one seed, 13.5 min on 2 idle cores)
python -m nsa_jax.main --config=configs/demo.py --config.scale=full  (3 seeds, longer runs, 95% intervals)

`config.quick` and `config.full` are the two pipelines; any run's knob is a flag, e.g.
`--config.quick.online.grpo.rl.num_rollouts=4`. The pipeline's wiring is `nsa_jax/train/demo.py`.
"""

import ml_collections

from configs import (
    base,
    dpo_tiny,
    llm_judge_tiny,
    offline_tiny,
    pns_pairs_tiny,
    pns_tiny,
    prm_tiny,
    rl_tiny,
    rm_tiny,
    sft_tiny,
)

ONLINE = ("grpo", "lens", "nsr", "rft")
OFFLINE = ("bcpg", "bcpg_nsa", "grpo_offline", "topr")
NEGATIVES = ("pns", "rejection", "random")  # DPO's pair files from the pns_pairs run (quick: the first two)


def pipeline(scale: str) -> ml_collections.ConfigDict:
    """Every run of the main job at `scale`. The budget: `rollouts` rollouts of 32 prompts x 8 responses online,
    and the same number of responses in the offline methods' stored set and in the policy's samples for DPO."""
    seeds, rollouts = (1, 8) if scale == "quick" else (3, 32)
    prompts = rollouts * 32  # 8 responses each: the online budget
    p = ml_collections.ConfigDict()
    p.seeds = seeds
    # Each paper's method against the baseline it claims to beat, paired in the report ("method-baseline").
    p.comparisons = ("lens-grpo", "nsr-grpo", "bcpg_nsa-bcpg", "dpo_pns-dpo_rejection")
    if scale == "full":
        p.comparisons += ("bcpg-grpo_offline", "dpo_pns-dpo_random")
    p.sft = sft_tiny.get_config()
    p.sft.eval.enabled = False
    p.sft.metrics.tensorboard = False

    # The held-out evaluation of every method (and of the start, once): levels 1 and 2, 16 samples per problem.
    p.eval = ml_collections.ConfigDict(rl_tiny.get_config("grpo").eval.to_dict())
    p.eval.difficulties = (1, 2)
    p.eval.num_problems = 48 if scale == "quick" else 128  # per level
    p.eval.samples = 16
    p.eval.ks = (1, 2, 4, 8, 16)
    p.eval.batch_size = 32

    p.online = ml_collections.ConfigDict({name: rl_tiny.get_config(name) for name in ONLINE})
    for c in p.online.values():
        c.rl.num_rollouts = rollouts
        c.rl.train_difficulties = (1,)  # the level SFT taught; level 2 stays out of reach at this budget
        c.eval.every = rollouts // 2 if scale == "full" else rollouts  # quick: before and after only

    p.judges = ml_collections.ConfigDict()
    p.judges.prm = prm_tiny.get_config()
    p.judges.prm.offline.num_prompts = prompts
    p.judges.prm.prm.epochs = 2 if scale == "quick" else 4
    p.judges.llm_judge = llm_judge_tiny.get_config()
    # Shorter fine-tunes than llm_judge_tiny.py's 600 steps: the judge's quality is measured in the judge report
    # either way (80 steps at batch 16: precision / recall 0.62 / 0.98 on the stored set's wrong responses).
    p.judges.llm_judge.judge.steps, p.judges.llm_judge.batch_size = (80, 16) if scale == "quick" else (300, 32)

    p.offline = ml_collections.ConfigDict({name: offline_tiny.get_config(name) for name in OFFLINE})
    if scale == "full":  # and RFT on the stored set's correct responses, the weakest of the BCPG-NSA paper's table
        p.offline.rft_offline = offline_tiny.get_config("rft")
    for c in p.offline.values():
        c.offline.num_prompts = prompts
        c.eval.every = 0  # before and after training
    nsa = p.offline.bcpg_nsa.offline
    nsa.step_labels = "consensus"  # the paper's: steps both the PRM and the LLM judge call correct
    nsa.llm_judge_style, nsa.llm_judge_format = "compact", "plain"  # the miniature's fine-tuned judge
    nsa.llm_judge_max_prompt_len = p.judges.llm_judge.judge.max_prompt_len
    nsa.llm_judge_max_new_tokens = p.judges.llm_judge.judge.max_new_tokens
    nsa.llm_judge_batch_size = p.judges.llm_judge.judge.batch_size

    p.preference = ml_collections.ConfigDict()
    p.preference.rm = rm_tiny.get_config()
    p.preference.generator = pns_tiny.get_config()
    p.preference.generator.rl.num_rollouts = rollouts if scale == "quick" else 50
    p.preference.generator.eval.enabled = scale == "full"
    p.preference.pairs = pns_pairs_tiny.get_config()
    p.preference.pairs.pns.num_prompts = prompts
    negatives = NEGATIVES[:2] if scale == "quick" else NEGATIVES  # full: random negatives too (another prompt's)
    p.preference.dpo = ml_collections.ConfigDict({source: dpo_tiny.get_config() for source in negatives})
    for c in p.preference.dpo.values():
        c.dpo.epochs = 1 if scale == "quick" else 2
    for c in (p.judges.prm, p.judges.llm_judge, *p.offline.values(), p.preference.rm, *p.preference.dpo.values()):
        c.metrics.tensorboard = False
    return p


def get_config(arg=None):
    c = base.get_config(arg)
    c.trainer = "demo"
    c.workdir = "runs/demo"  # each scale runs in <workdir>/<scale>
    c.scale = "quick"  # "quick" (one seed, the README's first command) or "full" (3 seeds, longer runs)
    c.quick = pipeline("quick")
    c.full = pipeline("full")
    return base.lock(c)
