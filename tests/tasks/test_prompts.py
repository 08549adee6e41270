"""Plain and chat-template prompts carry the answer-format instruction."""

import pytest

from nsa_jax import tasks


def test_plain_prompt():
    assert tasks.plain_prompt("a = 1; what is a?", style=None) == "a = 1; what is a?\n"
    hashed = tasks.plain_prompt("q?")
    assert hashed.startswith("q?\n") and "'#### <answer>'" in hashed and hashed.endswith("\n")
    assert "\\boxed{}" in tasks.plain_prompt("q?", style="boxed")
    with pytest.raises(ValueError, match="answer style"):
        tasks.plain_prompt("q?", style="xml")


class FakeTokenizer:
    chat_template = "fake"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        assert tokenize is False and add_generation_prompt is True
        return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages) + "<assistant>"


def test_chat_prompt_uses_the_template_and_falls_back():
    out = tasks.chat_prompt("q?", FakeTokenizer(), style="boxed", system="Be brief.")
    assert out == f"<system>Be brief.</system><user>q?\n\n{tasks.answer_instruction('boxed')}</user><assistant>"
    base = FakeTokenizer()
    base.chat_template = None
    assert tasks.chat_prompt("q?", base) == tasks.plain_prompt("q?")
    assert tasks.chat_prompt("q?", object()) == tasks.plain_prompt("q?")


def test_chat_prompt_with_a_real_tokenizer():
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizers.Tokenizer(tokenizers.models.WordLevel({"[UNK]": 0}, unk_token="[UNK]")),
        chat_template=(
            "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}"
        ),
    )
    out = tasks.chat_prompt("a = 1; what is a?", tok)
    assert out == f"<|user|>a = 1; what is a?\n\n{tasks.answer_instruction('hash')}\n<|assistant|>"
