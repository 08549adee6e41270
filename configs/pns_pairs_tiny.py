"""PNS's preference pairs on the miniature: the SFT start's correct answers against three sources of negatives on the
same prompts (the generator of `pns_tiny.py`, the start's own wrong answers, wrong answers to other prompts), as
`pairs_{pns,rejection,random}.jsonl` for `dpo_tiny.py`, and `plausibility.json`.

python -m nsa_jax.main --config=configs/pns_pairs_tiny.py --config.pns.generator_dir=runs/pns_tiny/export \
    --config.pns.rm_dir=runs/rm_tiny/export
python -m nsa_jax.main --config=configs/dpo_tiny.py --config.dpo.pairs=runs/pns_pairs_tiny/pairs_pns.jsonl
"""

from configs import base
from configs.rl_presets import miniature, pns_defaults


def get_config(arg=None):
    c = pns_defaults(miniature(base.get_config(arg)))
    c.trainer = "pns_pairs"
    c.workdir = "runs/pns_pairs_tiny"
    c.eval.enabled = False
    return base.lock(c)
