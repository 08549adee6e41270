"""In-JAX generation: prefill plus a decode loop over the KV cache, with the behaviour and policy log-probs RL needs.

`generate` is the entry point; `Buckets` controls the static shapes (and so the number of compilations);
`left_pad` is how prompts are laid out; `filter_logits` is the truncated distribution, exposed for tests and judges.
"""

from nsa_jax.sampling.buckets import Buckets, left_pad
from nsa_jax.sampling.filters import SamplingParams, filter_logits, sample_tokens
from nsa_jax.sampling.sampler import SampleOutput, generate

__all__ = ["Buckets", "SampleOutput", "SamplingParams", "filter_logits", "generate", "left_pad", "sample_tokens"]
