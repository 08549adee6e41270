"""nsa_jax: RL on LLM reasoning that learns from negative samples, in JAX."""

from setuptools import find_packages, setup

setup(
    name="nsa_jax",
    version="0.1.0",
    description=(
        "JAX/Flax NNX research codebase for RL on LLM reasoning that learns from negative samples "
        "(LENS, BCPG-NSA, PNS and their baselines)."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["nsa_jax", "nsa_jax.*"]),
    package_data={"nsa_jax": ["models/tiny/*.json"]},
    include_package_data=True,
    install_requires=[
        "jax>=0.7.2,<0.12",
        "flax>=0.12,<0.14",
        "optax>=0.2.5,<0.4",
        "orbax-checkpoint>=0.11.20,<0.14",
        "transformers>=4.56,<6",
        "tokenizers>=0.21,<0.25",
        "safetensors>=0.5,<0.10",
        "tensorflow-datasets>=4.9.9,<4.11",
        "grain>=0.2.12,<0.4",
        "ml-collections>=1.1,<1.3",
        "math-verify>=0.8,<0.11",
        "numpy>=1.26,<3",
        "tensorboardX>=2.6,<2.8",
        "tqdm>=4.66,<5",
        "matplotlib>=3.8,<4",  # the main job's report plots
        "absl-py>=2.1,<3",
    ],
    extras_require={
        # torch is pinned to the CPU wheel the test machines carry; it is only used for parity tests. pytest-xdist runs
        # the suite in two processes (the README's command), about 1.2x faster on 2 cores than one.
        "test": ["pytest>=8,<10", "pytest-xdist>=3.5,<4", "hypothesis>=6.100,<7", "torch==2.13.0", "ruff>=0.6"],
        "tasks": ["reasoning-gym>=0.1.19,<0.3"],
    },
    entry_points={"console_scripts": ["nsa-jax=nsa_jax.main:run"]},
)
