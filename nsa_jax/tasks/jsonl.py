"""Strict JSONL reading: a malformed line is an error naming the file and line, or is skipped and counted.

Data problems must surface as a clear message before training starts, not as a ``KeyError`` deep in a builder;
when the user prefers to drop bad lines (``skip_malformed=True``) the count is kept so it can be reported.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


class MalformedLineError(ValueError):
    """A JSONL line that is not a JSON object with the required string fields."""


@dataclass
class JsonlStats:
    records: int = 0
    skipped: int = 0
    blank: int = 0


def parse_line(raw: bytes, required: Sequence[str]) -> dict[str, Any]:
    """Decode one line; raises ``ValueError``/``TypeError`` with the reason when it is malformed."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"invalid UTF-8 ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(record, dict):
        raise TypeError(f"expected a JSON object, got {type(record).__name__}")
    missing = [k for k in required if k not in record]
    if missing:
        raise ValueError(f"missing key(s) {missing}")
    wrong = [k for k in required if not isinstance(record[k], str)]
    if wrong:
        raise TypeError(f"key(s) {wrong} must be strings")
    return record


def read_jsonl(
    path: str | os.PathLike,
    *,
    required: Sequence[str] = (),
    convert: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    skip_malformed: bool = False,
    stats: JsonlStats | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` (1-based) for each non-blank line of ``path``.

    A line that is not a valid UTF-8 JSON object with every ``required`` key as a string, or that ``convert``
    (the layout's own checks and conversion) rejects with ``ValueError`` or ``TypeError``, raises
    ``MalformedLineError("<path>:<line>: <reason>")``, or with ``skip_malformed`` is logged, counted in ``stats``
    and skipped.
    """
    stats = stats if stats is not None else JsonlStats()
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                stats.blank += 1
                continue
            try:
                record = parse_line(raw, required)
                if convert is not None:
                    record = convert(record)
            except (ValueError, TypeError) as e:
                message = f"{os.fspath(path)}:{lineno}: {e}"
                if not skip_malformed:
                    raise MalformedLineError(message) from None
                log.warning("skipping malformed line %s", message)
                stats.skipped += 1
                continue
            stats.records += 1
            yield lineno, record
