"""Method presets and shared defaults of the online RL configs (`configs/rl_tiny.py`, `configs/rl_qwen2_5_1_5b.py`,
`configs/demo.py`): experiment settings, so they live with the configs, not in the library.

`rl_defaults` adds the `rl` block and the RL evaluation knobs to a `configs/base.py` config; each method's config
then sets `rl.loss` and its knobs (`rl.loss_kwargs`). `miniature` is the 2-core-CPU scale of the built-in task
and tiny model, so the eight tiny configs do not each copy it.

The RL trainer reads `batch_size` as the responses per optimiser step (a mini-batch of whole groups) and
`micro_batch_size` as the gradient-accumulation unit; the run's length is `rl.num_rollouts` (`max_steps` is not
read: the optimiser takes `num_rollouts * ppo_epochs * Q*G/batch_size` steps).
"""

import ml_collections

# Each method as (`rl.loss`, its knobs): the registered loss in nsa_jax.losses.POLICY_LOSSES and the settings of its
# paper. Shared by the miniature and the real-scale configs so a method means the same thing at both scales.
METHODS = {
    # GRPO (Shao et al. 2024, arXiv 2402.03300): group-normalised advantages, clipped surrogate.
    "grpo": ("grpo", {"eps_low": 0.2, "eps_high": 0.2, "agg": "token-mean", "std_ddof": 1}),
    # Dr.GRPO (arXiv 2503.20783): no std division; "seq-mean-token-sum-norm" with L_max = rl.max_new_tokens.
    "drgrpo": ("drgrpo", {"eps_low": 0.2, "eps_high": 0.2}),
    # LENS (arXiv 2510.08696): confidence-weighted negative rewards; all-wrong groups de-meaned and scaled by alpha.
    "lens": ("lens", {"alpha": 0.25, "dimp_uses_pbar": True, "eps_low": 0.2, "eps_high": 0.2, "std_ddof": 1}),
    # NSR / PSR / W-REINFORCE (Zhu et al. 2025, arXiv 2506.01347): fixed advantages 0/-1, +1/0, lam/-1.
    "nsr": ("nsr", {"eps_low": 0.2, "eps_high": 0.2}),
    "psr": ("psr", {"eps_low": 0.2, "eps_high": 0.2}),
    "wreinforce": ("w-reinforce", {"lam": 0.1, "eps_low": 0.2, "eps_high": 0.2}),
    # NGRPO (arXiv 2509.18851): one virtual correct answer per group, asymmetric clip, all-correct groups dropped.
    "ngrpo": ("ngrpo", {"eps_low": 0.16, "eps_high": 0.24, "std_ddof": 1}),
    # RFT (Yuan et al. 2023, arXiv 2308.01825): sample, keep the correct answers, token NLL on them.
    "rft": ("rft", {"agg": "token-mean"}),
}


def method(c: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
    """Sets `rl.loss` and `rl.loss_kwargs` to method `name` of `METHODS` (call after the scale is set: Dr.GRPO's
    L_max is the config's `rl.max_new_tokens`)."""
    loss, knobs = METHODS[name]
    c.rl.loss = loss
    c.rl.loss_kwargs = ml_collections.ConfigDict(knobs)
    if name == "drgrpo":
        c.rl.loss_kwargs.max_len = c.rl.max_new_tokens
    return c


def rl_defaults(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Adds the RL knobs (with their defaults) to `c` (unlocked) and returns it."""
    c.trainer = "rl"
    c.rl = ml_collections.ConfigDict()
    c.rl.loss = "grpo"  # method: a name in nsa_jax.losses.POLICY_LOSSES (grpo, drgrpo, lens, nsr, psr, ...)
    c.rl.loss_kwargs = ml_collections.ConfigDict()  # that loss's knobs (eps_low, eps_high, agg, alpha, ...)
    c.rl.num_rollouts = 100  # rollout batches sampled over the run (each followed by its PPO epochs)
    c.rl.prompts_per_rollout = 16  # Q: prompts per rollout batch
    c.rl.group_size = 8  # G: responses sampled per prompt (GRPO/LENS groups)
    c.rl.train_difficulties = ()  # levels the training prompts are drawn from, equally; () = data.difficulty
    c.rl.ppo_epochs = 1  # passes over each rollout (PPO, arXiv 1707.06347); logp_old is fixed at the first
    # "auto": when a rollout is one optimiser step, logp_old is the step's own log-probs (gradient stopped; exact, one
    # forward fewer); otherwise a scoring pass. "score": always the scoring pass.
    c.rl.logp_old = "auto"
    # Compute each group's prompt once (not G times) in the update's forward passes: the same log-probs within float
    # tolerance, fewer FLOPs (benchmarks/rl_update.py); off meshes with Explicit axes. False: whole rows. The
    # offline methods and DPO follow it too (benchmarks/offline_update.py).
    c.rl.share_prompt = True
    # With share_prompt, run the responses' real tokens through the position-wise layers (projections, MLP, norms,
    # log-probs) packed, without their padding (models.Packing); the attention keeps the rows. Same values within
    # float tolerance; one compile per packed width (a multiple of 4 columns). False: the padded rows throughout.
    c.rl.pack_responses = True
    c.rl.max_prompt_len = 64  # prompts are left-padded to this many tokens (longer: error)
    c.rl.max_new_tokens = 64  # response budget; cut responses stay in the batch with reward from the verifier
    c.rl.temperature = 1.0  # sampling temperature of rollouts
    c.rl.top_k = 0  # 0: off
    c.rl.top_p = 1.0  # 1: off
    c.rl.prompt_format = "plain"  # "plain": prompt + newline, as SFT saw it; "chat" / "chat-boxed": chat template
    c.rl.verify_deadline_s = 5.0  # whole-batch deadline of the answer verifier
    c.rl.verify_warn_timeout_frac = 0.05  # warn on the console when more of a rollout's answers time out
    c.rl.reward_min = 0.0  # a reward outside [reward_min, reward_max] (or not finite) stops the run, naming the row
    c.rl.reward_max = 1.0
    c.rl.beta_kl = 0.0  # KL(policy || frozen start policy) coefficient, k3 estimator (GRPO, arXiv 2402.03300)
    c.rl.filter_homogeneous = False  # DAPO dynamic-sampling filter (arXiv 2503.14476); off: LENS uses those groups
    c.rl.tis_cap = 0.0  # truncated importance sampling of sampler/trainer mismatch (Yao et al. 2025); 0 = off
    c.data.dir = ""  # local GSM8K/MATH JSONL folder for data.task "gsm8k" / "math" (unused by built-in tasks)

    c.eval.enabled = True
    c.eval.every = 10  # rollouts between held-out evaluations (one always runs before the first and at the end)
    c.eval.samples = 8  # responses per test problem; pass@k for k <= samples (unbiased estimator)
    c.eval.ks = (1, 8)
    c.eval.temperature = 1.0
    c.eval.seed = 1234  # seed of the evaluation sampling keys
    c.eval.start_from = ""  # a held-out results file of the start policy (heldout/round_000000.npz of a run with
    # the same eval settings): read instead of evaluating the start again
    c.checkpoint.every = 10  # in the RL trainer, rollouts between checkpoints
    return c


def miniature(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The 2-core CPU miniature: built-in arith task, tiny model warm-started by `configs/sft_tiny.py`."""
    c = rl_defaults(c)
    c.model.path = "runs/sft_tiny/export"  # run `--config=configs/sft_tiny.py` first (or point at any SFT export)
    c.data.task = "arith"
    c.data.num_examples = 2048
    # SFT saw level 1 only: level 1 gives mixed groups, level 2 (one step longer) many all-wrong ones, the groups
    # GRPO cannot learn from and LENS can.
    c.rl.train_difficulties = (1, 2)
    c.rl.num_rollouts = 100
    c.rl.prompts_per_rollout = 32
    c.rl.group_size = 8
    c.rl.max_prompt_len = 56  # level-2 prompts have at most 51 characters (+ newline)
    c.rl.max_new_tokens = 64  # level-2 solutions have at most 54 characters (+ EOS)
    c.batch_size = 256  # one optimiser step per rollout of 32 x 8
    # Small steps on large batches. From the SFT start of configs/sft_tiny.py (half its demonstrations stop a step
    # short), GRPO at 1e-4 gains +0.10 held-out level-1 pass@1 in 50 rollouts (README). On the earlier start (canonical
    # demonstrations only, whose errors were arithmetic facts) 3e-5 was best and 1e-4 / 3e-4 lost accuracy.
    c.optimizer.learning_rate = 1e-4
    c.optimizer.warmup_steps = 0
    c.optimizer.weight_decay = 0.0
    c.logprob_chunk_size = 512
    c.eval.difficulties = (1, 2)
    c.eval.num_problems = 64  # per level; x 8 samples (pass@1 standard error about 0.03 per level)
    c.eval.max_new_tokens = 64
    c.eval.batch_size = 64
    c.eval.every = 25
    c.checkpoint.every = 10
    c.metrics.tensorboard = False
    c.export.enabled = False
    return c


def qwen2_5_1_5b(c: ml_collections.ConfigDict, data: str = "gsm8k") -> ml_collections.ConfigDict:
    """Real scale: a local Qwen2.5-1.5B-Instruct HF directory on local GSM8K or MATH JSONL (`data`), bf16, sharded
    over every device (fsdp), group size 16 as in the LENS paper."""
    if data not in ("gsm8k", "math"):
        raise ValueError(f"data={data!r}: use 'gsm8k' or 'math'")
    c = rl_defaults(c)
    c.model.path = "checkpoints/Qwen2.5-1.5B-Instruct"  # local HF directory (config.json, *.safetensors, tokenizer)
    c.model.dtype = "bfloat16"
    c.model.param_dtype = "float32"
    c.model.remat = "full"  # 1,536-token rows at 16 per micro-batch: keep each layer's input only
    c.data.task = data
    c.data.dir = f"data/{data}"  # holds train.jsonl and test.jsonl in the GSM8K / MATH layout
    c.data.difficulty = 0
    c.data.num_examples = 7473 if data == "gsm8k" else 7500
    c.rl.prompt_format = "chat" if data == "gsm8k" else "chat-boxed"  # answers as '#### x' or \\boxed{x}
    c.rl.num_rollouts = 200
    c.rl.prompts_per_rollout = 32
    c.rl.group_size = 16
    c.rl.max_prompt_len = 512
    c.rl.max_new_tokens = 1024
    c.rl.temperature = 1.0
    c.batch_size = 128  # 4 optimiser steps per rollout
    c.micro_batch_size = 16
    c.optimizer.learning_rate = 1e-6
    c.optimizer.warmup_steps = 10
    c.optimizer.end_lr_factor = 1.0
    c.optimizer.weight_decay = 0.0
    c.logprob_chunk_size = 512
    c.eval.difficulties = (0,) if data == "gsm8k" else (1, 2, 3, 4, 5)
    c.eval.num_problems = 256 if data == "gsm8k" else 100
    c.eval.samples = 16
    c.eval.ks = (1, 4, 16)
    c.eval.max_new_tokens = 1024
    c.eval.batch_size = 16
    c.eval.every = 20
    c.checkpoint.every = 20
    return c


# The offline methods of the BCPG-NSA paper's table (arXiv 2505.14403) as (`offline.loss`, its knobs,
# `offline.step_labels`), all trained on the same stored set with `logp_old` the behaviour log-probs.
OFFLINE_METHODS = {
    # BCPG: the paper's Eq. 6 without step labels (NSA weight 1 everywhere).
    "bcpg": ("bcpg", {"nsa_beta": 1.0, "tau": 1e-3}, "none"),
    # BCPG-NSA: steps of wrong answers labelled correct get weight beta = 0.5. Labels: the built-in task's ground
    # truth ("oracle") by default; the paper's judged labels with `offline.step_labels="consensus"` and the judges'
    # directories (configs/prm_tiny.py, configs/llm_judge_tiny.py; offline_qwen2_5.py uses them by default).
    "bcpg_nsa": ("bcpg", {"nsa_beta": 0.5, "tau": 1e-3}, "oracle"),
    # GRPO-offline: GRPO's ratio and clip against the behaviour policy.
    "grpo_offline": ("grpo", {"eps_low": 0.2, "eps_high": 0.2, "agg": "token-mean", "std_ddof": 1}, "none"),
    # TOPR (arXiv 2503.14286): positives as SFT, negatives by the truncated sequence ratio.
    "topr": ("topr", {}, "none"),
    # RFT on the set's correct responses.
    "rft": ("rft", {"agg": "token-mean"}, "none"),
}


# The BCPG-NSA paper's beta ablation: the weight of mined steps in wrong answers (1 = plain BCPG, 0 = no penalty on
# them, < 0 rewards them); `offline_tiny.py:bcpg_nsa,beta=0` and the like run one point.
BETA_SWEEP = (1.0, 0.5, 0.0, -0.5)


def offline_arg(arg: str | None, default: str = "bcpg_nsa") -> tuple[str, float | None]:
    """An offline config's argument, "method" or "method,beta=X" (X the NSA beta of a BCPG run): (method, beta)."""
    name, _, rest = (arg or default).partition(",")
    if not rest:
        return name, None
    key, _, value = rest.partition("=")
    if key != "beta" or not value:
        raise ValueError(f"config argument {arg!r}: expected 'method' or 'method,beta=X'")
    if OFFLINE_METHODS[name][0] != "bcpg":
        raise ValueError(f"config argument {arg!r}: beta is BCPG's knob, not {name!r}'s")
    return name, float(value)


def offline_method(c: ml_collections.ConfigDict, name: str, beta: float | None = None) -> ml_collections.ConfigDict:
    """Adds the `offline` block (with its defaults) to an RL config `c` and sets method `name` of
    `OFFLINE_METHODS`. The stored set's sampling reuses `rl.max_prompt_len` / `rl.max_new_tokens` /
    `rl.prompt_format`."""
    loss, knobs, labels = OFFLINE_METHODS[name]
    c.trainer = "offline"
    c.offline = ml_collections.ConfigDict()
    c.offline.loss = loss  # a name in nsa_jax.losses.POLICY_LOSSES, fed the stored behaviour log-probs
    c.offline.loss_kwargs = ml_collections.ConfigDict(knobs)
    if beta is not None:
        c.offline.loss_kwargs.nsa_beta = beta
    c.offline.step_labels = labels  # "none", "oracle" (the task's ground-truth step checker), or a judge mode:
    # "prm" (the PRM judge), "llm" (the LLM judge), "consensus" (both say correct, the paper's), "or" (either)
    c.offline.prm_dir = ""  # with step_labels "prm": a PRM head directory (the "prm" trainer's export)
    c.offline.prm_threshold = 0.5  # the PRM judge calls a step correct when sigmoid(score) exceeds this
    c.offline.llm_judge_dir = ""  # with step_labels "llm" / "consensus" / "or": the LLM judge's HF directory
    c.offline.llm_judge_style = "full"  # "full" (the rules in words, any instruct model) or "compact" (fine-tuned)
    c.offline.llm_judge_format = "chat"  # "chat": the judge's chat template; "plain": prompt + newline (as SFT)
    c.offline.llm_judge_max_prompt_len = 1024  # judge prompts are left-padded to this many tokens
    c.offline.llm_judge_max_new_tokens = 256  # the verdict's budget
    c.offline.llm_judge_batch_size = 16  # prompts per sampler call
    c.offline.dataset_dir = ""  # "" = <workdir>/dataset; point several methods at one set to compare them fairly
    c.offline.num_prompts = 256  # training problems in the stored set (before all-right / all-wrong are dropped)
    c.offline.difficulties = (1,)  # their levels, equally
    c.offline.samples_per_prompt = 8  # K responses per prompt from the behaviour policy (the paper: 32)
    c.offline.prompts_per_call = 32  # prompts per sampler call while building the set
    c.offline.temperature = 1.0  # sampling temperature of the behaviour policy (the paper: 0.7)
    c.offline.seed = 0  # seed of the set's sampling keys
    c.offline.epochs = 2  # passes over the set (the paper: 8)
    c.offline.iterations = 1  # stage 5: each further iteration resamples the set with the policy just trained
    return c


def dpo_defaults(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Adds the `dpo` block (DPO, arXiv 2305.18290; IPO, arXiv 2310.12036) to a base config `c`."""
    c.trainer = "dpo"
    c.dpo = ml_collections.ConfigDict()
    c.dpo.pairs = "offline"  # "offline": the stored set in dpo.dataset_dir; or a {prompt, chosen, rejected} JSONL
    c.dpo.dataset_dir = "runs/offline_set"  # the stored set, when dpo.pairs = "offline"
    c.dpo.beta = 0.1  # DPO's inverse temperature (the BCPG-NSA paper's DPO baseline used 0.5)
    c.dpo.kind = "sigmoid"  # "sigmoid" (DPO) or "ipo"
    c.dpo.epochs = 2  # passes over the pairs
    c.batch_size = 64  # rows per optimiser step: 32 pairs (chosen, rejected)
    return c


def rm_defaults(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Adds the `rm` block (the reward model of PNS, ALGORITHMS.md section 4) to a base config `c`."""
    c.trainer = "reward_model"
    c.rm = ml_collections.ConfigDict()
    c.rm.pairs = "offline"  # "offline": the stored set in rm.dataset_dir; or a {prompt, chosen, rejected} JSONL
    c.rm.dataset_dir = "runs/offline_set"  # the stored set, when rm.pairs = "offline"
    c.rm.center_coef = 0.01  # lambda of the centring penalty lambda * (r_w + r_l)^2
    c.rm.heldout_frac = 0.2  # share of prompts (by a hash of their tokens) whose pairs are only evaluated
    c.rm.epochs = 4  # passes over the training pairs
    c.eval.every = 0  # rounds between held-out accuracy evaluations (0: before training and at the end only)
    return c


def prm_defaults(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Turns an offline config `c` (`offline_method`) into a PRM-training one: the `prm` block; the stored set is
    `offline.*`'s, labelled by the task's step checker."""
    c.trainer = "prm"
    c.prm = ml_collections.ConfigDict()
    c.prm.backbone = ""  # HF directory of the PRM's backbone; "" = model.path (the policy's)
    c.prm.labels = "oracle"  # training labels: "oracle" (the task's step checker) or "mc" (Monte-Carlo completions)
    c.prm.mc_samples = 4  # with "mc": completions sampled after each step's prefix
    c.prm.mc_model = ""  # with "mc": the HF directory that completes them; "" = model.path
    c.prm.threshold = 0.5  # a step is judged correct when sigmoid(score) exceeds this
    c.prm.heldout_frac = 0.2  # share of prompts (by a hash of their tokens) kept for the held-out judge quality
    c.prm.epochs = 4  # passes over the training prompts' responses
    c.eval.every = 0  # rounds between held-out evaluations (0: before training and at the end only)
    return c


def judge_defaults(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Turns an offline config `c` (`offline_method`) into an LLM-judge fine-tuning one (`train/sft/judge.py`):
    the `judge` block; the stored set is `offline.*`'s, labelled by the task's step checker."""
    c.trainer = "llm_judge"
    c.judge = ml_collections.ConfigDict()
    c.judge.heldout_frac = 0.2  # share of prompts (by a hash of their tokens) kept for the held-out judge quality
    c.judge.steps = 600  # SFT steps on the verdict examples
    c.judge.seq_len = 256  # tokens per example: compact judge prompt + newline + verdict + EOS
    c.judge.max_prompt_len = 232  # judge prompts are left-padded to this many tokens when judging
    c.judge.max_new_tokens = 24  # the verdict's budget
    c.judge.batch_size = 64  # prompts per sampler call when judging
    return c


def pns_defaults(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Turns an RL config `c` into PNS's negative-generator run: the `pns` block (the composite reward,
    ALGORITHMS.md section 4, our reading); the method stays `c.rl.loss` (GRPO in the paper [secondary])."""
    c.trainer = "pns_generator"
    c.pns = ml_collections.ConfigDict()
    c.pns.rm_dir = ""  # the reward model's head directory (the "reward_model" trainer's export)
    c.pns.prm_dir = ""  # the PRM's head directory (the "prm" trainer's export), for the chain-of-thought score
    c.pns.prm_threshold = 0.5  # the PRM judge calls a step correct when sigmoid(score) exceeds this
    c.pns.format_style = "hash"  # the format gate: "hash" (#### x, built-in tasks, GSM8K) or "boxed" (MATH)
    c.pns.w_fmt = 0.2  # the composite reward's weights: format, answer invalidity, reward model, chain of thought
    c.pns.w_inv = 0.4
    c.pns.w_rm = 0.2
    c.pns.w_cot = 0.2
    c.pns.score_rows = 64  # rows per reward-model / PRM forward
    # The pairs run ("pns_pairs"): the sources of negatives on the same prompts.
    c.pns.generator_dir = ""  # the trained generator's export (the "pns_generator" run's)
    c.pns.num_prompts = 256  # training problems the pairs are drawn for
    c.pns.difficulties = (1,)  # their levels, equally
    c.pns.samples = 8  # responses per problem from the policy and from the generator
    c.pns.prompts_per_call = 32  # problems per sampler call
    c.pns.seed = 7  # seed of the problems and the sampling keys (other prompts than the RL runs' pool draws)
    return c
