#!/usr/bin/env bash
# N JAX processes on one machine (CPU), wired with jax.distributed exactly as on a pod: a rehearsal of multi-host
# runs (per-process data sharding, process-0-only writes, orbax multi-process checkpoints) on a laptop.
#
#   launch/local_multiprocess.sh [NUM_PROCESSES] --config=configs/sft_tiny.py [--config.key=value ...]
#
# Environment: DEVICES_PER_PROCESS (default 1) fake CPU devices per process; PORT (default: a free port);
# PYTHON (default: python). Each process gets NSA_JAX_COORDINATOR / NSA_JAX_NUM_PROCESSES / NSA_JAX_PROCESS_ID,
# which nsa_jax.parallel.initialize reads. Exits non-zero if any process fails (the others are then stopped).
set -euo pipefail

num=2
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then num=$1; shift; fi
python=${PYTHON:-python}
port=${PORT:-$("$python" -c 'import socket; s = socket.socket(); s.bind(("localhost", 0)); print(s.getsockname()[1])')}

export JAX_PLATFORMS=cpu
# The caller's other XLA flags (an instruction-set cap, dumps) are kept; the device count is this script's.
kept=$(printf '%s\n' ${XLA_FLAGS:-} | grep -v -- '--xla_force_host_platform_device_count' | tr '\n' ' ' || true)
export XLA_FLAGS="${kept}--xla_force_host_platform_device_count=${DEVICES_PER_PROCESS:-1}"
export NSA_JAX_COORDINATOR="localhost:${port}" NSA_JAX_NUM_PROCESSES="${num}"

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for ((i = 0; i < num; i++)); do
  NSA_JAX_PROCESS_ID=$i "$python" -m nsa_jax.main "$@" &
  pids+=($!)
done
status=0
for ((i = 0; i < num; i++)); do
  # The first failure stops the rest: they would otherwise block forever in a collective.
  if ! wait -n; then status=1; kill "${pids[@]}" 2>/dev/null || true; fi
done
trap - EXIT
exit "$status"
