"""TFDS builders over fixture JSONL files (both layouts), read back through tfds.data_source and grain."""

import json

import grain
import pytest

from nsa_jax import tasks
from nsa_jax.tasks.data import make_dataset
from nsa_jax.tasks.tfds_jsonl import jsonl_data_source, malformed_counts, record_to_problem

GSM8K = [
    {"question": f"Tom has {i} apples and buys 2. How many?", "answer": f"{i} + 2 = {i + 2}\n#### {i + 2}"}
    for i in range(10)
]
MATH = [
    {"problem": "Half of one?", "solution": "It is $\\boxed{\\frac{1}{2}}$.", "level": "Level 2", "type": "Algebra"},
    {"problem": "Root?", "solution": "So \\boxed{\\frac{1}{\\sqrt{2}}}", "level": "Level 5", "type": "Algebra"},
    {"problem": "Pi?", "solution": "\\boxed{\\pi}", "level": "Level ?", "type": "Geometry"},
    {"problem": "Two?", "solution": "\\boxed{2}", "level": 2},
]


def flat(batches):
    return [x for batch in batches for x in batch]


def write_jsonl(path, rows, extra_lines=()):
    lines = [json.dumps(r) for r in rows]
    for lineno, text in extra_lines:
        lines.insert(lineno - 1, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_gsm8k_round_trip_and_task(tmp_path):
    src = tmp_path / "gsm8k"
    write_jsonl(src / "train.jsonl", GSM8K)
    write_jsonl(src / "test.jsonl", GSM8K[:3])
    ds = jsonl_data_source("gsm8k", src, "train", data_dir=tmp_path / "prepared")
    assert len(ds) == 10
    problems = [record_to_problem("gsm8k", ds[i]) for i in range(len(ds))]
    assert sorted(p.prompt for p in problems) == sorted(r["question"] for r in GSM8K)
    assert all(
        p.answer == str(int(p.prompt.split()[2]) + 2) and p.steps == (p.solution.split("\n")[0],) for p in problems
    )
    task = tasks.get_task("gsm8k", source_dir=src, data_dir=tmp_path / "prepared")
    a = task.sample("test", 5, seed=1)
    assert a == task.sample("test", 5, seed=1) and len(a) == 5  # cycles past the 3 test problems
    assert {p.prompt for p in a} == {r["question"] for r in GSM8K[:3]}
    assert task.verify(a[0].solution, a[0]) == 1.0 and task.verify("#### -1", a[0]) == 0.0
    with pytest.raises(NotImplementedError):
        task.check_steps(a[0].solution, a[0])


def test_math_round_trip_levels_and_nested_boxed(tmp_path):
    src = tmp_path / "math"
    write_jsonl(src / "train.jsonl", MATH)
    ds = jsonl_data_source("math", src, "train", data_dir=tmp_path / "prepared")
    by_prompt = {p.prompt: p for p in (record_to_problem("math", ds[i]) for i in range(len(ds)))}
    assert by_prompt["Root?"].answer == "\\frac{1}{\\sqrt{2}}" and by_prompt["Root?"].difficulty == 5
    assert by_prompt["Pi?"].difficulty == 0 and by_prompt["Pi?"].meta == {"type": "Geometry"}
    assert by_prompt["Two?"].difficulty == 2 and by_prompt["Two?"].meta == {"type": ""}
    task = tasks.get_task("math", source_dir=src, data_dir=tmp_path / "prepared")
    assert {p.prompt for p in task.sample("train", 6, difficulty=2)} == {"Half of one?", "Two?"}
    with pytest.raises(ValueError, match="no train problems with difficulty 4"):
        task.sample("train", 1, difficulty=4)
    half = by_prompt["Half of one?"]
    assert task.verify("so the answer is \\boxed{0.5}", half) == 1.0


def test_grain_pipeline_shuffle_batch_repeat(tmp_path):
    src = tmp_path / "g"
    write_jsonl(src / "train.jsonl", GSM8K)
    source = jsonl_data_source("gsm8k", src, "train", data_dir=tmp_path / "prepared")

    def prompts(ds):
        return [[p.prompt for p in batch] for batch in ds]

    def convert(record):
        return record_to_problem("gsm8k", record)

    a = prompts(make_dataset(source, batch_size=4, seed=0, transform=convert))
    assert a == prompts(make_dataset(source, batch_size=4, seed=0, transform=convert))
    assert a != prompts(make_dataset(source, batch_size=4, seed=1, transform=convert))
    assert [len(b) for b in a] == [4, 4, 2]
    assert sorted(flat(a)) == sorted(r["question"] for r in GSM8K)
    two = prompts(make_dataset(source, batch_size=5, seed=0, num_epochs=2, transform=convert))
    assert len(two) == 4 and flat(two[:2]) != flat(two[2:]) and sorted(flat(two[:2])) == sorted(flat(two[2:]))
    endless = iter(make_dataset(source, batch_size=3, num_epochs=None, drop_remainder=True))
    assert all(len(next(endless)) == 3 for _ in range(20))


def test_grain_sharding_two_disjoint_shards():
    source = list(range(11))
    shards = [
        flat(make_dataset(source, batch_size=2, seed=0, shard=grain.sharding.ShardOptions(i, 2))) for i in range(2)
    ]
    assert not set(shards[0]) & set(shards[1]) and sorted(shards[0] + shards[1]) == source
    even = [
        flat(make_dataset(source, batch_size=2, shard=grain.sharding.ShardOptions(i, 2, drop_remainder=True)))
        for i in range(2)
    ]
    assert len(even[0]) == len(even[1]) == 5 and not set(even[0]) & set(even[1])
    with pytest.raises(ValueError, match="shard_index"):
        make_dataset(source, batch_size=2, shard=grain.sharding.ShardOptions(2, 2))


def test_builtin_problems_feed_the_same_pipeline():
    problems = tasks.get_task("arith").sample("train", 8, seed=0, difficulty=1)
    batches = list(make_dataset(problems, batch_size=4, seed=0))
    assert len(batches) == 2 and sorted(p.prompt for b in batches for p in b) == sorted(p.prompt for p in problems)


@pytest.mark.parametrize(
    "bad_line, reason",
    [
        ("{not json", "invalid JSON"),
        ('["a list"]', "expected a JSON object"),
        ('{"question": "q"}', "missing key"),
        ('{"question": "q", "answer": "no final line"}', "'answer' has no '#### final' line"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, bad_line, reason):
    src = tmp_path / "bad"
    path = write_jsonl(src / "train.jsonl", GSM8K[:4], extra_lines=[(3, bad_line)])
    with pytest.raises(tasks.MalformedLineError) as info:
        jsonl_data_source("gsm8k", src, "train", data_dir=tmp_path / "prepared")
    assert f"{path}:3: {reason}" in str(info.value)
    ds = jsonl_data_source("gsm8k", src, "train", data_dir=tmp_path / "skipping", skip_malformed=True)
    assert len(ds) == 4
    assert malformed_counts("gsm8k", tmp_path / "skipping") == {"train": 1}


def test_read_jsonl_direct(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": "1"}\n\n{"a": "\xff"}\n{"a": 2}\n{"a": "3"}\n')
    with pytest.raises(tasks.MalformedLineError, match=r"x\.jsonl:3: invalid UTF-8"):
        list(tasks.read_jsonl(path, required=("a",)))
    stats = tasks.JsonlStats()
    rows = list(tasks.read_jsonl(path, required=("a",), skip_malformed=True, stats=stats))
    assert rows == [(1, {"a": "1"}), (5, {"a": "3"})]
    assert (stats.records, stats.skipped, stats.blank) == (2, 2, 1)


def test_missing_source_dir_and_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        jsonl_data_source("gsm8k", tmp_path / "nope", "train")
    with pytest.raises(ValueError, match="unknown data layout"):
        jsonl_data_source("csv", tmp_path, "train")
