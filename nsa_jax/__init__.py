"""nsa_jax: reinforcement learning on LLM reasoning that learns from negative samples.

Subpackages (arrows go one way, see shared DESIGN): ``losses`` (pure maths), ``models`` (Flax NNX decoder and
HF checkpoints), ``sampling`` (in-JAX generation), ``tasks`` (verifiable tasks, data, verifiers),
``parallel`` (mesh and shardings), ``train`` (orchestration), ``eval`` (pass@k and reports).
"""

__version__ = "0.1.0"
