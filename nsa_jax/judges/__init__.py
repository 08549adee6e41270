"""nsa_jax.judges: BCPG-NSA's step judging, inference only (training a judge is a trainer's job).

Step segmentation (`segment`: rule and task segmenters, per-token step ids), the PRM judge (`prm`: a scalar head's
step probabilities above a threshold), the LLM judge (`llm`: a generative model's verdicts), Monte-Carlo step labels
for tasks without step truth (`montecarlo`), and the combination of judges with its report against ground truth
(`consensus`: consensus / or / llm / prm / oracle modes, precision, recall, mined tokens, accuracy).
"""

from nsa_jax.judges.consensus import MODES, combine, judge_metrics, judge_report, step_token_counts
from nsa_jax.judges.montecarlo import mc_step_labels, sampler_completions
from nsa_jax.judges.prm import PRMJudge, step_ends, step_values
from nsa_jax.judges.segment import (
    RuleSegmenter,
    Segmenter,
    TaskSegmenter,
    response_step_ids,
    token_offsets,
    token_step_ids,
)

__all__ = [
    "MODES",
    "PRMJudge",
    "RuleSegmenter",
    "Segmenter",
    "TaskSegmenter",
    "combine",
    "judge_metrics",
    "judge_report",
    "mc_step_labels",
    "response_step_ids",
    "sampler_completions",
    "step_ends",
    "step_token_counts",
    "step_values",
    "token_offsets",
    "token_step_ids",
]
