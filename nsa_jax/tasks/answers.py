"""Final-answer extraction, cheap normalisation and the format reward.

Everything here is plain string work on untrusted model output: regexes and linear scans with hard caps on length
and nesting, no ``eval``, no sympy. Anything that needs real maths equivalence goes to the sandboxed math-verify
workers (``verify.py``); this module decides the common case without them.
"""

from __future__ import annotations

import re
from fractions import Fraction

MAX_RESPONSE_CHARS = 10_000  # responses are cut to their last 10k characters before extraction
MAX_ANSWER_CHARS = 500  # longer extracted answers are rejected without a worker
MAX_BRACE_DEPTH = 16  # deeper nesting is rejected without a worker (math-verify parsing goes exponential)

_HASH = re.compile(r"^[ \t]*####[ \t]*(\S[^\n]*?)[ \t]*$", re.MULTILINE)
_BOXED = re.compile(r"\\(?:boxed|fbox)[ \t]*\{")
_SAID = re.compile(r"\banswer[ \t]*(?:is\b|:)[ \t]*:?[ \t]*([^\n]*)", re.IGNORECASE)
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_RATIO = re.compile(r"([-+]?\d+)/(\d+)")
_FRAC = re.compile(r"(-?)\\[dt]?frac\{(-?\d+)\}\{(\d+)\}")
_MAX_DIGITS = 60  # numbers longer than this are never converted (Fraction of a 10 MB digit string is slow)


def clean_text(text: str | bytes, *, tail: int | None = None) -> str:
    """Make any model output a valid ``str``: bytes are decoded with replacement, lone surrogates replaced.

    With ``tail``, only the last ``tail`` characters are kept, cut before decoding so a huge input costs nothing.
    """
    if isinstance(text, bytes | bytearray):
        raw = bytes(text) if tail is None else bytes(text[-4 * tail :])
        out = raw.decode("utf-8", errors="replace")
    elif isinstance(text, str):
        out = (text if tail is None else text[-tail:]).encode("utf-8", errors="replace").decode("utf-8")
    else:
        raise TypeError(f"expected str or bytes, got {type(text).__name__}")
    return out if tail is None else out[-tail:]


def _brace_matches(text: str) -> dict[int, int]:
    """Index of each ``{`` -> index of its matching ``}``, in one linear pass (unclosed braces are absent)."""
    matches: dict[int, int] = {}
    stack: list[int] = []
    for i, ch in enumerate(text):
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            matches[stack.pop()] = i
    return matches


def last_boxed(text: str) -> str | None:
    """Content of the last closed ``\\boxed{...}`` (nested braces allowed); None if there is none."""
    opens = [m.end() - 1 for m in _BOXED.finditer(text)]
    if not opens:
        return None
    matches = _brace_matches(text)
    for start in reversed(opens):
        if start in matches:
            return text[start + 1 : matches[start]].strip()
    return None


def _strip_answer(s: str) -> str:
    s = s.strip().rstrip(".").strip()
    if len(s) >= 2 and s[0] == "$" and s[-1] == "$":
        s = s.strip("$").strip()
    return s


def extract_answer(text: str | bytes) -> str | None:
    """The final answer of a response, or None.

    Looks, in order, for the last ``#### x`` line (the built-in tasks' and GSM8K's format), the last closed
    ``\\boxed{...}`` (MATH), then the last "answer: x" / "the answer is x". Only the last ``MAX_RESPONSE_CHARS``
    characters are searched, since the final answer is at the end and the scan must stay cheap on huge inputs.
    """
    text = clean_text(text, tail=MAX_RESPONSE_CHARS)
    found = _HASH.findall(text)
    if found:
        return _strip_answer(found[-1]) or None
    boxed = last_boxed(text)
    if boxed is not None:
        return _strip_answer(boxed) or None
    said = _SAID.findall(text)
    if said:
        inner = last_boxed(said[-1])
        return _strip_answer(inner if inner is not None else said[-1]) or None
    return None


def normalize_answer(s: str) -> str:
    """Canonical string form for the exact-match fast path: no spaces, no ``$``, no thousands commas."""
    s = _strip_answer(s).replace(" ", "").replace("\\!", "").replace("\\,", "")
    if _NUMBER.fullmatch(s):
        s = s.replace(",", "").lstrip("+")
    return s


def as_number(s: str) -> Fraction | None:
    """Exact value of a plain number (integer, decimal, ``a/b``, ``\\frac{a}{b}``), else None."""
    s = normalize_answer(s)
    if len(s) > _MAX_DIGITS:
        return None
    if _NUMBER.fullmatch(s):
        return Fraction(s.replace(",", ""))
    m = _RATIO.fullmatch(s)
    if m and int(m.group(2)) != 0:
        return Fraction(int(m.group(1)), int(m.group(2)))
    m = _FRAC.fullmatch(s)
    if m and int(m.group(3)) != 0:
        sign = -1 if m.group(1) else 1
        return sign * Fraction(int(m.group(2)), int(m.group(3)))
    return None


def brace_depth(s: str) -> int:
    depth = best = 0
    for ch in s:
        if ch == "{":
            depth += 1
            best = max(best, depth)
        elif ch == "}":
            depth = max(depth - 1, 0)
    return best


def looks_hostile(answer: str) -> bool:
    """Answers the workers should never see: too long, too deep, or shaped like Python code rather than maths."""
    return (
        len(answer) > MAX_ANSWER_CHARS
        or brace_depth(answer) > MAX_BRACE_DEPTH
        or "__" in answer
        or "import" in answer
        or any(ord(c) < 32 and c not in "\t\n" for c in answer)
    )


_FINAL_LINE = re.compile(r"####[ \t]*\S[^\n]*")


def format_reward(response: str | bytes, *, style: str = "hash") -> float:
    """1.0 when the response states a final answer in the expected format, else 0.0.

    ``style="hash"``: the last non-blank line is ``#### x`` (the built-in tasks and GSM8K); ``"boxed"``: a closed
    ``\\boxed{}`` exists (MATH); ``"any"``: any form ``extract_answer`` accepts.
    """
    text = clean_text(response, tail=MAX_RESPONSE_CHARS)
    if style == "hash":
        lines = [line for line in text.splitlines() if line.strip()]
        return float(bool(lines) and _FINAL_LINE.fullmatch(lines[-1].strip()) is not None)
    if style == "boxed":
        return float(last_boxed(text) is not None)
    if style == "any":
        return float(extract_answer(text) is not None)
    raise ValueError(f"format_reward style must be 'hash', 'boxed' or 'any', got {style!r}")
