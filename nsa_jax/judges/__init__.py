"""nsa_jax.judges: BCPG-NSA's step judging, inference only (training a judge is a trainer's job).

Today: step segmentation (`segment`: rule and task segmenters, per-token step ids) and the combination of judges
with its report against ground truth (`consensus`: consensus / or / llm / prm / oracle modes, precision, recall,
mined tokens). The PRM and LLM judges themselves arrive with the rest of the BCPG-NSA pipeline.
"""

from nsa_jax.judges.consensus import MODES, combine, judge_metrics, judge_report, step_token_counts
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
    "RuleSegmenter",
    "Segmenter",
    "TaskSegmenter",
    "combine",
    "judge_metrics",
    "judge_report",
    "response_step_ids",
    "step_token_counts",
    "token_offsets",
    "token_step_ids",
]
