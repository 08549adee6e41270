"""The scalar head (PRM / reward model) against transformers' `*ForSequenceClassification` (PyTorch), both ways."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from flax import nnx
from hf_reference import FAMILIES, VOCAB, padded_batch

from nsa_jax import models

PAD = VOCAB - 1


def _random_rm(family: str, seed: int = 0) -> transformers.PreTrainedModel:
    torch.manual_seed(seed)
    cfg = FAMILIES[family]()
    cfg.num_labels, cfg.pad_token_id = 1, PAD
    model = transformers.AutoModelForSequenceClassification.from_config(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(1.0 + 0.1 * torch.randn_like(p) if "norm" in name else 0.2 * torch.randn_like(p))
    return model


def _batch() -> tuple[np.ndarray, np.ndarray]:
    """Right-padded rows whose pads hold the pad id (transformers pools at the last non-pad token)."""
    ids, mask = padded_batch("right")
    ids = np.where(mask > 0, ids % PAD, PAD).astype(np.int32)
    return ids, mask


def _hf_scores(hf, ids, mask) -> np.ndarray:
    with torch.no_grad():
        out = hf(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask, dtype=torch.long))
    return out.logits[:, 0].float().numpy()


_scores = nnx.jit(lambda head, ids, mask: models.last_token_scores(head(ids, attention_mask=mask), mask))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_head_matches_transformers_sequence_classification_both_ways(family, tmp_path):
    hf = _random_rm(family)
    hf.save_pretrained(tmp_path / "hf")
    ids, mask = _batch()
    want = _hf_scores(hf, ids, mask)

    head = models.from_pretrained_head(tmp_path / "hf")
    got = np.asarray(_scores(head, jnp.asarray(ids), jnp.asarray(mask)))
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)

    # Saved by nsa_jax: transformers loads it with no missing or unexpected key and scores the same.
    models.save_head(head, tmp_path / "ours")
    again, info = transformers.AutoModelForSequenceClassification.from_pretrained(
        tmp_path / "ours", output_loading_info=True
    )
    assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    again.config.pad_token_id = PAD
    np.testing.assert_allclose(_hf_scores(again.eval(), ids, mask), want, atol=2e-5, rtol=1e-4)
    assert again.config.tie_word_embeddings == hf.config.tie_word_embeddings


def test_fresh_head_on_a_causal_lm_scores_zero_and_per_position(tmp_path):
    """A causal-LM directory (untied LM head included) gives the backbone with a zero head; the per-position scores
    are w . h_t of the backbone's hidden states."""
    torch.manual_seed(0)
    lm = transformers.AutoModelForCausalLM.from_config(FAMILIES["llama"]()).eval()
    lm.save_pretrained(tmp_path / "lm")
    head = models.from_pretrained_head(tmp_path / "lm")
    ids, mask = _batch()
    assert np.all(np.asarray(_scores(head, jnp.asarray(ids), jnp.asarray(mask))) == 0.0)

    w = np.random.default_rng(1).normal(size=head.config.hidden_size).astype(np.float32)
    head.score[...] = jnp.asarray(w)
    with torch.no_grad():
        hidden = lm.model(
            input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask)
        ).last_hidden_state
    want = hidden.numpy() @ w
    got = np.asarray(nnx.jit(lambda h, i, m: h(i, attention_mask=m))(head, jnp.asarray(ids), jnp.asarray(mask)))
    np.testing.assert_allclose(got[mask > 0], want[mask > 0], atol=1e-4, rtol=1e-4)


def test_last_token_scores_picks_each_rows_last_masked_position():
    scores = jnp.arange(12.0).reshape(3, 4)
    mask = jnp.array([[1, 1, 0, 0], [0, 1, 1, 1], [0, 0, 0, 0]])
    np.testing.assert_array_equal(np.asarray(models.last_token_scores(scores, mask)), [1.0, 7.0, 0.0])


def test_score_tensor_of_the_wrong_shape_is_named(tmp_path):
    hf = _random_rm("qwen2")
    hf.save_pretrained(tmp_path / "hf")
    import safetensors.numpy

    file = tmp_path / "hf" / "model.safetensors"
    tensors = safetensors.numpy.load_file(file)
    tensors["score.weight"] = np.zeros((2, tensors["score.weight"].shape[1]), np.float32)
    safetensors.numpy.save_file(tensors, file, metadata={"format": "pt"})
    with pytest.raises(models.CheckpointError, match="score.weight has shape"):
        models.from_pretrained_head(tmp_path / "hf")


def test_a_judge_backbone_with_another_vocabulary_is_refused(tmp_path):
    """Judges and reward models read the policy's token ids, so their tokenizer must be the policy's."""
    import tokenizers
    from tokenizers import models as tok_models

    from nsa_jax.models.tiny import TINY_DIR

    models.check_same_vocabulary(TINY_DIR, models.load_tokenizer(TINY_DIR), "PRM")  # the same: no error
    other = tokenizers.Tokenizer(tok_models.WordLevel({"<unk>": 0, "a": 1, "b": 2}, unk_token="<unk>"))
    transformers.PreTrainedTokenizerFast(tokenizer_object=other).save_pretrained(tmp_path / "other")
    with pytest.raises(models.CheckpointError, match="PRM's tokenizer"):
        models.check_same_vocabulary(tmp_path / "other", models.load_tokenizer(TINY_DIR), "PRM")
