"""nsa_jax.judges: BCPG-NSA's step judging, inference only (training a judge is a trainer's job).

Today: step segmentation (`segment`: rule and task segmenters, per-token step ids). The PRM and LLM judges,
their consensus and the judge report arrive with the rest of the BCPG-NSA pipeline.
"""

from nsa_jax.judges.segment import (
    RuleSegmenter,
    Segmenter,
    TaskSegmenter,
    response_step_ids,
    token_offsets,
    token_step_ids,
)

__all__ = ["RuleSegmenter", "Segmenter", "TaskSegmenter", "response_step_ids", "token_offsets", "token_step_ids"]
