"""How many packed widths (each a compile of the RL train step and of the scoring pass) long rollouts draw, at a
step of 4 against the update's grid (`PACKED_WIDTHS` per band width through `rollouts.width_quantum`).

    python benchmarks/packed_widths.py [--rollouts 300] [--budget 1024] [--mean 150 350 600]

Host arithmetic only, nothing compiled: the Qwen2.5-1.5B preset's rollouts (`configs/rl_presets.py`: 32 prompts x
16 responses, 16-row micro-batches), the responses' lengths log-normal (sigma 0.5) around `--mean` tokens and cut
at the budget, each micro-batch split into the blocks of 8 data-parallel devices (2 rows each), the packed width
the smallest multiple of the step that holds every block's tokens (`models.packed_width`, as `RLUpdate` calls it),
on the whole budget's columns (the update first cuts the token band, itself one of at most 8 widths, and takes the
grid of that band). Prints, per mean length, the distinct widths and the mean width under both steps.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nsa_jax import models  # noqa: E402
from nsa_jax.rollouts import width_quantum  # noqa: E402
from nsa_jax.train.rl.update import PACKED_WIDTHS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rollouts", type=int, default=300)
    parser.add_argument("--budget", type=int, default=1024)
    parser.add_argument("--mean", type=float, nargs="+", default=[150, 350, 600])
    args = parser.parse_args()
    rows, micro, devices, budget = 512, 16, 8, args.budget
    grid = width_quantum(budget, PACKED_WIDTHS, multiple=4)
    print(f"{args.rollouts} rollouts of {rows} responses, budget {budget}, {micro}-row micro-batches over {devices} "
          f"devices; grid step {grid}")
    for mean in args.mean:
        rng = np.random.default_rng(0)
        widths = {4: [], grid: []}
        for _ in range(args.rollouts):
            lengths = np.clip(rng.lognormal(np.log(mean), 0.5, rows), 1, budget).astype(int)
            mask = np.arange(budget)[None] < lengths[:, None]
            calls = list(mask.reshape(-1, micro, budget))
            for step, found in widths.items():
                found.append(models.packed_width(calls, devices, quantum=step))
        fine, coarse = (np.array(widths[s]) for s in (4, grid))
        print(f"mean length {mean:.0f}: step 4 {len(set(fine))} widths (mean {fine.mean():.0f}); grid "
              f"{len(set(coarse))} widths (mean {coarse.mean():.0f}, {coarse.mean() / fine.mean() - 1:+.1%} slots)")


if __name__ == "__main__":
    main()
