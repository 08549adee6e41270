"""Prompt formatting: plain text (the built-in tiny model) and chat templates (real checkpoints).

The answer-format instruction tells the model how to end its response so the verifier and the format reward can
find the answer: ``#### x`` for the built-in tasks and GSM8K, ``\\boxed{x}`` for MATH.
"""

from __future__ import annotations

from typing import Any

INSTRUCTIONS = {
    "hash": "Reason step by step, one step per line, then give the final answer on a last line as '#### <answer>'.",
    "boxed": "Reason step by step, then put the final answer in \\boxed{}.",
}


def answer_instruction(style: str = "hash") -> str:
    if style not in INSTRUCTIONS:
        raise ValueError(f"answer style must be one of {sorted(INSTRUCTIONS)}, got {style!r}")
    return INSTRUCTIONS[style]


def plain_prompt(question: str, *, style: str | None = "hash") -> str:
    """``question`` then the instruction, ending in a newline after which the response starts.

    ``style=None`` leaves the instruction out: the built-in tiny model has a short context and learns the format
    from its SFT data, so every character of instruction would be wasted.
    """
    if style is None:
        return f"{question}\n"
    return f"{question}\n{answer_instruction(style)}\n"


def chat_prompt(question: str, tokenizer: Any, *, style: str = "hash", system: str | None = None) -> str:
    """The question as a user turn in the tokenizer's chat template, with the generation prompt appended.

    Falls back to ``plain_prompt`` when the tokenizer has no ``apply_chat_template`` or no template set (base
    models), so one config serves both.
    """
    template = getattr(tokenizer, "chat_template", None)
    if not hasattr(tokenizer, "apply_chat_template") or template is None:
        return plain_prompt(question, style=style)
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": f"{question}\n\n{answer_instruction(style)}"})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
