"""TFDS builders over local JSONL files in GSM8K and MATH layout, written as array_record (no TensorFlow).

The user's files are the "manual download": every ``<split>.jsonl`` in the source directory becomes a split
(``train.jsonl`` -> ``"train"``). Preparing once writes array_record shards under ``data_dir``; later reads are
random access through ``tfds.data_source``, which is what grain wants. Prepared data is cached by TFDS: after
editing the source files, delete ``data_dir`` (or use a new one).

Layouts (one JSON object per line):
- GSM8K: ``question``, ``answer`` (worked solution ending in a ``#### final`` line).
- MATH: ``problem``, ``solution`` (with ``\\boxed{answer}``), optional ``level`` ("Level 3" or 3), ``type``.
Both builders also store the extracted final answer (``final`` / ``answer``) so readers never re-parse solutions.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from nsa_jax.tasks.answers import extract_answer, last_boxed
from nsa_jax.tasks.base import Problem
from nsa_jax.tasks.jsonl import JsonlStats, read_jsonl

_LEVEL = re.compile(r"(?:level\s*)?(\d+)", re.IGNORECASE)


class _JsonlBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared part: one split per ``*.jsonl`` file of the manual directory, strict line checks."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = "Put <split>.jsonl files (e.g. train.jsonl, test.jsonl) in the source directory."
    REQUIRED: tuple[str, ...] = ()

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        # TFDS's own lookup touches ``importlib_resources``, which it only installs on Python < 3.9; the builder
        # has no checksums or metadata files beside its code anyway.
        return epath.Path(__file__)

    def __init__(self, *, skip_malformed: bool = False, **kwargs: Any):
        self.skip_malformed = skip_malformed
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        # DatasetInfo directly rather than dataset_info_from_configs, which wants a package folder with a README.
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.__doc__,
            features=tfds.features.FeaturesDict(self.feature_spec()),
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        files = sorted(Path(dl_manager.manual_dir).glob("*.jsonl"))
        if not files:
            raise FileNotFoundError(
                f"no *.jsonl files in {dl_manager.manual_dir} ({self.MANUAL_DOWNLOAD_INSTRUCTIONS})"
            )
        return {f.stem: self._generate_examples(f) for f in files}

    def _generate_examples(self, path: Path):
        stats = JsonlStats()
        yield from read_jsonl(
            path, required=self.REQUIRED, convert=self.convert, skip_malformed=self.skip_malformed, stats=stats
        )
        # Stored in dataset_info so readers can report how many lines were dropped (see ``malformed_counts``).
        self.info.metadata[f"skipped_{path.stem}"] = stats.skipped

    @staticmethod
    def feature_spec() -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def convert(record: dict[str, Any]) -> dict[str, Any]:
        """The example stored for one JSON record; ``ValueError`` marks the line malformed."""
        raise NotImplementedError


class Gsm8kJsonl(_JsonlBuilder):
    """GSM8K layout: ``question`` and a worked ``answer`` ending in ``#### final``."""

    REQUIRED = ("question", "answer")

    @staticmethod
    def feature_spec() -> dict[str, Any]:
        return {"question": tfds.features.Text(), "answer": tfds.features.Text(), "final": tfds.features.Text()}

    @staticmethod
    def convert(record: dict[str, Any]) -> dict[str, Any]:
        final = extract_answer(record["answer"]) if "####" in record["answer"] else None
        if final is None:
            raise ValueError("'answer' has no '#### final' line")
        return {"question": record["question"], "answer": record["answer"], "final": final}


class MathJsonl(_JsonlBuilder):
    """MATH layout: ``problem``, ``solution`` with ``\\boxed{}``, optional ``level`` and ``type``."""

    REQUIRED = ("problem", "solution")

    @staticmethod
    def feature_spec() -> dict[str, Any]:
        return {
            "problem": tfds.features.Text(),
            "solution": tfds.features.Text(),
            "answer": tfds.features.Text(),
            "level": tfds.features.Scalar(dtype=np.int32),  # 0 when absent or unknown ("Level ?")
            "type": tfds.features.Text(),
        }

    @staticmethod
    def convert(record: dict[str, Any]) -> dict[str, Any]:
        answer = last_boxed(record["solution"])
        if not answer:
            raise ValueError("'solution' has no closed \\boxed{...} answer")
        m = _LEVEL.fullmatch(str(record.get("level", "")).strip())
        return {
            "problem": record["problem"],
            "solution": record["solution"],
            "answer": answer,
            "level": int(m.group(1)) if m else 0,
            "type": str(record.get("type", "")),
        }


LAYOUTS: dict[str, type[_JsonlBuilder]] = {"gsm8k": Gsm8kJsonl, "math": MathJsonl}


def _builder_cls(layout: str) -> type[_JsonlBuilder]:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown data layout {layout!r}; known: {sorted(LAYOUTS)}")
    return LAYOUTS[layout]


def default_data_dir(source_dir: str | os.PathLike) -> str:
    """Where prepared array_record files go when the config names no ``data_dir``: beside the sources."""
    return os.path.join(os.fspath(source_dir), "_tfds")


def jsonl_data_source(
    layout: str,
    source_dir: str | os.PathLike,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    skip_malformed: bool = False,
):
    """Random-access source over ``<source_dir>/<split>.jsonl`` (prepared on first use) via ``tfds.data_source``."""
    cls = _builder_cls(layout)
    if not Path(source_dir).is_dir():
        raise FileNotFoundError(f"data source directory {os.fspath(source_dir)!r} does not exist")
    return tfds.data_source(
        cls.name,
        split=split,
        data_dir=os.fspath(data_dir) if data_dir is not None else default_data_dir(source_dir),
        builder_kwargs={"file_format": "array_record", "skip_malformed": skip_malformed},
        download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(manual_dir=os.fspath(source_dir))},
    )


def malformed_counts(layout: str, data_dir: str | os.PathLike) -> dict[str, int]:
    """Lines skipped per split when the data was prepared with ``skip_malformed=True``."""
    info = tfds.builder(_builder_cls(layout).name, data_dir=os.fspath(data_dir)).info
    return {k.removeprefix("skipped_"): int(v) for k, v in info.metadata.items() if k.startswith("skipped_")}


def _text(x: bytes | str) -> str:
    return x.decode("utf-8") if isinstance(x, bytes) else str(x)


def record_to_problem(layout: str, record: dict[str, Any]) -> Problem:
    """A data-source record (bytes text, as TFDS returns it) as a ``Problem``; steps are the solution's lines."""
    _builder_cls(layout)
    gsm8k = layout == "gsm8k"
    solution = _text(record["answer" if gsm8k else "solution"])
    return Problem(
        prompt=_text(record["question" if gsm8k else "problem"]),
        answer=_text(record["final" if gsm8k else "answer"]),
        difficulty=0 if gsm8k else int(record["level"]),
        solution=solution,
        steps=tuple(line for line in solution.split("\n") if line.strip() and not line.lstrip().startswith("####")),
        task=layout,
        meta={} if gsm8k else {"type": _text(record["type"])},
    )
