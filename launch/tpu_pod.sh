#!/usr/bin/env bash
# Runs the same nsa_jax command on every host of a Cloud TPU pod slice; JAX finds the other hosts itself
# (nsa_jax.parallel.initialize -> jax.distributed.initialize() auto-detection on TPU VMs).
#
#   TPU=my-v5p-32 ZONE=us-east5-a launch/tpu_pod.sh --config=configs/sft_qwen2_5.py:7b \
#       --config.model.path=/mnt/models/Qwen2.5-7B --config.data.path=/mnt/data/train.jsonl \
#       --config.workdir=/mnt/ckpt/sft7b
#
# Paths must be visible from every host at the same place (a GCS FUSE mount or a shared disk); only process 0
# writes metrics and the exported policy, orbax writes checkpoints from all hosts.
#
# Environment: TPU (slice name), ZONE, PROJECT (optional), REPO (checkout on the hosts, default ~/nsa_jax),
# PYTHON (default python3 of the host venv), NSA_JAX_COMPILE_CACHE (optional: a folder every host sees, such as
# /mnt/ckpt/xla, for the compiled programs; only process 0 writes them, so each host's own default ~/.cache folder
# would serve host 0 alone; see nsa_jax/compile_cache.py).
#
# ---------------------------------------------------------------------------------------------------------------
# Worked example: 7B policy (Qwen2.5-7B, 7.6e9 parameters, 28 layers, d=3584, 28 heads, vocab 152k) on a v5p-32
# (16 chips x 95 GB HBM, 4 hosts x 4 chips).
#   mesh: data=1, fsdp=16, tensor=1 (--config.mesh.fsdp=-1 fills it): every weight matrix and both AdamW moments
#         split 16 ways over the "embed" axis; batches split 16 ways.
#   state (float32 params + grads + AdamW mu, nu = 16 bytes/param): 7.6e9 x 16 B = 122 GB -> 7.6 GB per chip.
#   activations (bfloat16 compute, no rematerialisation): with dense attention (model.attention="dense") the
#         float32 attention scores and probabilities, 2 x 28 heads x 2048 keys x 4 B = 0.46 MB per token per
#         layer, dominate; with the ~0.12 MB of other bfloat16 activations that is ~16 MB per token over 28 layers
#         -> ~33 GB per 2048-token sequence. The default blocked attention (model.attention="chunked", blocks of
#         512 queries recomputed in the backward pass) keeps none of them: ~7 GB per sequence (measured on XLA:CPU
#         in float32, 49.8 -> 14.0 GiB for the 28-layer stack: benchmarks/attention_memory.py).
#   logits: losses.token_logprobs keeps 1024 rows x 152k float32 = 0.6 GB at a time (never [B, T, V]).
#   batch: batch_size=256 sequences x 2048 tokens (0.5M tokens/step), micro_batch_size=16 (1 sequence per chip):
#         16 accumulation steps; ~7.6 + 7 + ~3 (temporaries) = ~18 GB of 95 GB per chip (dense attention: ~44
#         GB). micro_batch_size=64 (4 per chip, ~46 GB) needs 4 accumulation steps.
# ---------------------------------------------------------------------------------------------------------------
set -euo pipefail
: "${TPU:?set TPU to the slice name}" "${ZONE:?set ZONE}"
repo=${REPO:-'~/nsa_jax'}
python=${PYTHON:-python3}
args=$(printf ' %q' "$@")
project=()
[[ -n "${PROJECT:-}" ]] && project=(--project "$PROJECT")
cache=""
[[ -n "${NSA_JAX_COMPILE_CACHE:-}" ]] && cache="NSA_JAX_COMPILE_CACHE=$(printf '%q' "$NSA_JAX_COMPILE_CACHE") "
gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" "${project[@]}" --worker=all \
  --command "cd $repo && $cache$python -m nsa_jax.main$args"
