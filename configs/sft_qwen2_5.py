"""SFT of a local Qwen2.5 checkpoint (0.5B / 1.5B / 7B) on a local JSONL of {"prompt", "response"} lines.

python -m nsa_jax.main --config=configs/sft_qwen2_5.py:7b \
    --config.model.path=/data/Qwen2.5-7B --config.data.path=/data/gsm8k_sft.jsonl --config.workdir=/ckpt/sft7b

The argument picks the size; batch and mesh follow the worked examples in launch/tpu_pod.sh (v5p-32) and
launch/slurm_gpu.sh (8xH100): parameters, gradients and AdamW moments in float32 sharded over all chips (fsdp),
bfloat16 compute, micro-batches sized to fit activations.
"""

from configs import base

SIZES = {  # arg -> (learning rate, sequences per micro-batch)
    "0.5b": (1e-5, 64),
    "1.5b": (1e-5, 32),
    "7b": (5e-6, 16),
}


def get_config(arg="0.5b"):
    arg = arg or "0.5b"
    if arg not in SIZES:
        raise ValueError(f"size {arg!r} is not one of {sorted(SIZES)}")
    lr, micro = SIZES[arg]
    c = base.get_config()
    c.workdir = f"runs/sft_qwen2_5_{arg}"
    c.model.path = "/path/to/Qwen2.5-" + arg.upper()  # a local HF directory; set it on the command line
    c.model.dtype = "bfloat16"
    c.model.param_dtype = "float32"
    c.model.remat = "full"  # 2048-token rows: keep each layer's input only (the micro-batch sizes assume it)
    c.data.path = "/path/to/train.jsonl"  # {"prompt": ..., "response": ...} per line
    c.data.seq_len = 2048
    c.batch_size = 256
    c.micro_batch_size = micro
    c.max_steps = 2000
    c.log_every = 10
    c.logprob_chunk_size = 1024  # 1024 rows x 152k vocab: 0.6 GB of float32 logits at a time
    c.optimizer.learning_rate = lr
    c.optimizer.warmup_steps = 50
    c.optimizer.weight_decay = 0.0
    c.checkpoint.every = 200
    c.checkpoint.keep = 3
    return base.lock(c)
