"""Shared defaults of every nsa_jax run. Experiment files start from `base.get_config()`, change what differs,
and return `lock(config)` so a mistyped `--config.key=value` fails before any work.

Each knob says what it does and its default; sizes are global (over all processes and devices).
"""

import ml_collections


def get_config(arg=None):
    del arg
    c = ml_collections.ConfigDict()
    c.trainer = "sft"  # which trainer runs the job: "sft" (later "rl", "bcpg", "dpo"); see nsa_jax.train.TRAINERS
    c.workdir = "runs/default"  # run directory: checkpoints/, metrics/, export/ (and the built-in model) go below it
    c.seed = 0  # PRNG seed of the training state (dropout-free models only use it for sampling)

    c.model = ml_collections.ConfigDict()
    c.model.path = ""  # local Hugging Face directory (config.json + *.safetensors + tokenizer); "" = model.builtin
    c.model.builtin = "tiny"  # built-in model written to <workdir>/<builtin>_model when model.path is "": "tiny" or
    # "tiny-wide" (nsa_jax.models.tiny.VARIANTS)
    c.model.seed = 0  # initialisation seed of the built-in model
    c.model.dtype = "float32"  # compute dtype: "float32" or "bfloat16" (softmax and norms always run in float32)
    c.model.param_dtype = "float32"  # storage dtype of the weights (and so of the optimiser's moments)
    c.model.remat = "none"  # per-layer activation rematerialisation (jax.checkpoint) in the gradient: "none",
    # "dots" (keep the weight matmuls' outputs, recompute the rest) or "full" (keep each layer's input only, ~1/3 more
    # compute); real-scale runs (billions of parameters, 1-2k tokens) need "full" or "dots" to fit
    c.model.attention = "chunked"  # attention scores: "chunked" (blocks of attention_chunk queries, each recomputed
    # in the backward pass: a layer's gradient holds one block's scores), "dense" (all [B, H, T, S] at once) or
    # "fused" (jax.nn.dot_product_attention: cuDNN flash attention on GPU, XLA's dense computation elsewhere)
    c.model.attention_chunk = 512  # queries per block of "chunked" (rows up to this long attend densely)

    c.mesh = ml_collections.ConfigDict()  # device mesh axes; -1 takes the devices the others leave
    c.mesh.data = 1  # pure data parallelism (parameters replicated across it)
    c.mesh.fsdp = -1  # data parallelism with parameters and optimiser state sharded across it (ZeRO-3 style)
    c.mesh.tensor = 1  # tensor parallelism over heads / MLP / vocabulary

    c.distributed = ml_collections.ConfigDict()  # jax.distributed; "" / 0 / -1 = NSA_JAX_* env or auto-detect
    c.distributed.coordinator = ""  # "host:port" of process 0
    c.distributed.num_processes = 0  # total processes
    c.distributed.process_id = -1  # this process's index

    c.optimizer = ml_collections.ConfigDict()  # AdamW (arXiv 1711.05101), warmup then cosine, global-norm clipping
    c.optimizer.learning_rate = 3e-4  # peak learning rate
    c.optimizer.warmup_steps = 20  # linear warmup from 0
    c.optimizer.end_lr_factor = 0.1  # cosine ends at learning_rate * end_lr_factor at max_steps
    c.optimizer.b1 = 0.9  # Adam first-moment decay
    c.optimizer.b2 = 0.95  # Adam second-moment decay
    c.optimizer.eps = 1e-8  # Adam epsilon
    c.optimizer.weight_decay = 0.01  # decoupled weight decay, matrices only (not norms or biases)
    c.optimizer.max_grad_norm = 1.0  # clip gradients to this global L2 norm; 0 disables

    c.batch_size = 32  # sequences per optimiser step (global)
    c.micro_batch_size = 0  # sequences per forward/backward; gradients accumulate over batch_size/micro_batch_size
    c.max_steps = 300  # optimiser steps
    c.log_every = 10  # steps between metrics records (the progress bar updates every step)
    c.nonfinite_max_in_a_row = 5  # skip updates with a non-finite loss/gradient; stop after this many in a row
    c.logprob_chunk_size = 1024  # rows per chunk of losses.token_logprobs (bounds the [rows, V] logits in memory)

    c.data = ml_collections.ConfigDict()
    c.data.path = ""  # local JSONL with {"prompt": ..., "response": ...} per line; "" = a built-in task
    c.data.task = "arith"  # built-in task (nsa_jax.tasks.task_names())
    c.data.difficulty = 1  # built-in task level; 0 mixes all levels
    c.data.num_examples = 4096  # problems drawn from the built-in task's train split
    c.data.seq_len = 128  # tokens per row (prompt + response + EOS); longer examples are an error
    c.data.seed = 0  # seed of the problem draw and of the epoch shuffles
    c.data.stop_early = 0.0  # share of built-in-task demonstrations that stop one step short (sft.data.task_pairs)

    c.checkpoint = ml_collections.ConfigDict()  # orbax; resumes from the latest complete checkpoint automatically
    c.checkpoint.dir = ""  # "" = <workdir>/checkpoint
    c.checkpoint.every = 100  # steps between checkpoints (one is always written at the end)
    c.checkpoint.keep = 2  # checkpoints kept (older ones deleted)

    c.metrics = ml_collections.ConfigDict()  # written by process 0 only
    c.metrics.dir = ""  # "" = <workdir>/metrics; metrics.jsonl always
    c.metrics.tensorboard = True  # also TensorBoard event files in <dir>/tb

    c.export = ml_collections.ConfigDict()  # final policy as a Hugging Face directory (process 0)
    c.export.enabled = True
    c.export.dir = ""  # "" = <workdir>/export

    c.eval = ml_collections.ConfigDict()  # held-out greedy pass@1 after training
    c.eval.enabled = False
    c.eval.difficulties = (1,)  # levels of data.task to evaluate, one table row each
    c.eval.num_problems = 64  # test-split problems per level
    c.eval.max_new_tokens = 64  # generation budget per answer
    c.eval.batch_size = 64  # prompts per generate call
    return c


def lock(config):
    """Locks the config: unknown keys (typos) raise instead of creating new fields."""
    config.lock()
    return config
