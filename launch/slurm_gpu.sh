#!/usr/bin/env bash
# One nsa_jax process per GPU on SLURM GPU nodes, wired with jax.distributed: the coordinator is the first node of
# the allocation. Submit with sbatch (or run inside salloc):
#
#   sbatch --nodes=1 --gpus-per-node=8 --ntasks-per-node=8 launch/slurm_gpu.sh \
#       --config=configs/sft_qwen2_5.py:7b --config.model.path=/shared/Qwen2.5-7B \
#       --config.data.path=/shared/train.jsonl --config.workdir=/shared/ckpt/sft7b
#
# Each task sees one GPU (CUDA_VISIBLE_DEVICES from SLURM_LOCALID) and gets NSA_JAX_COORDINATOR,
# NSA_JAX_NUM_PROCESSES, NSA_JAX_PROCESS_ID, which nsa_jax.parallel.initialize reads. Paths must be on a file
# system all nodes share. Environment: PORT (coordinator port, default 12355), PYTHON (default python).
#
# ---------------------------------------------------------------------------------------------------------------
# Worked example: 7B policy (Qwen2.5-7B, 7.6e9 parameters) on one 8xH100 node (80 GB each).
#   mesh: data=1, fsdp=8, tensor=1 (--config.mesh.fsdp=-1): weights and AdamW moments split 8 ways.
#   state (float32 params + grads + mu + nu = 16 bytes/param): 122 GB -> 15.3 GB per GPU.
#   activations (bfloat16, no rematerialisation): ~7 GB per 2048-token sequence with the default blocked
#         attention, ~33 GB with model.attention="dense" (float32 scores dominate; derivation in
#         launch/tpu_pod.sh). model.attention="fused" uses cuDNN's flash attention (not yet measured here).
#   batch: batch_size=256 x 2048 tokens, micro_batch_size=8 (1 sequence per GPU): 32 accumulation steps;
#         ~15.3 + 7 + ~3 = ~25 GB of 80 GB per GPU (dense attention: ~51 GB); micro_batch_size=32 (4 per GPU,
#         ~46 GB) needs 8 accumulation steps.
#   Two nodes (16 GPUs): --nodes=2, same config; mesh fsdp=16 (state 7.6 GB/GPU), or data=2, fsdp=8 to keep the
#         weight all-gathers inside a node's NVLink.
# ---------------------------------------------------------------------------------------------------------------
#SBATCH --job-name=nsa_jax
#SBATCH --exclusive
set -euo pipefail
python=${PYTHON:-python}
head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
export NSA_JAX_COORDINATOR="${head}:${PORT:-12355}"
export NSA_JAX_NUM_PROCESSES="${SLURM_NTASKS}"
# srun starts one task per GPU; each task reads its own rank and GPU.
srun --kill-on-bad-exit=1 bash -c '
  export NSA_JAX_PROCESS_ID=$SLURM_PROCID CUDA_VISIBLE_DEVICES=$SLURM_LOCALID
  exec '"$python"' -m nsa_jax.main "$@"' nsa_jax "$@"
