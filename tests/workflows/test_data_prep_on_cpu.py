"""prepare-data: each dataset's published layout in, verl RL parquet out, loadable by verl's RLHFDataset."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from typer.testing import CliRunner

from sparse_rlvr.workflows.data_prep import DAPO_PREFIX, DAPO_SUFFIX, format_prompt, output_schema, prepare

AIME_PROBLEM = "Find the number of ordered pairs $(x,y)$ with $x^2 + y^2 = 25$."
MATH_PROBLEM = "Compute $\\frac{1}{2} + \\frac{1}{3}$."


def dapo_row(problem: str, answer: str, uuid: str) -> dict:
    """A row as BytedTsinghua-SIA/DAPO-Math-17k stores it."""
    return {
        "data_source": "math_dapo",
        "prompt": [{"content": DAPO_PREFIX + problem + DAPO_SUFFIX, "role": "user"}],
        "ability": "MATH",
        "reward_model": {"ground_truth": answer, "style": "rule-lighteval/MATH_v2"},
        "extra_info": {"index": uuid},
    }


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def expected_row(source, split, index, problem, answer, id_, subject=None, level=None):
    return {
        "data_source": source,
        "prompt": [{"role": "user", "content": format_prompt(problem)}],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": answer},
        "extra_info": {"split": split, "index": index, "id": id_, "problem": problem, "subject": subject, "level": level},
    }


def read_rows(path) -> list[dict]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    assert table.schema.equals(output_schema()), "every output file has the same schema (verl concatenates them)"
    return table.to_pylist()


def test_prompt_template_is_dapos():
    prompt = format_prompt("What is 1+1?")
    assert prompt.startswith("Solve the following math problem step by step. The last line of your response should be "
                             "of the form Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n")
    assert prompt.endswith('What is 1+1?\n\nRemember to put your answer on its own line after "Answer:".')


def test_dapo_math_17k_is_deduplicated_and_keeps_the_answer_instruction(tmp_path):
    rows = [dapo_row("Find $2+3$.", "5", "u1")] * 3 + [dapo_row("Find $x$ if $2x=8$.", "4", "u2")] * 2
    rows.append(dapo_row("Find  $2+3$.", "5", "u3"))  # the same problem up to whitespace
    pd.DataFrame(rows).to_parquet(tmp_path / "dapo-math-17k.parquet")
    report = prepare("dapo_math_17k", [str(tmp_path / "dapo-math-17k.parquet")], tmp_path / "out.parquet")
    assert (report.rows_read, report.rows_written, report.duplicates, report.conflicting_answers) == (6, 2, 4, 0)
    assert read_rows(tmp_path / "out.parquet") == [
        expected_row("math_dapo", "train", 0, "Find $2+3$.", "5", "u1"),
        expected_row("math_dapo", "train", 1, "Find $x$ if $2x=8$.", "4", "u2"),
    ]
    # the original prompt text is reproduced exactly, "Answer: $Answer" instruction included
    assert read_rows(tmp_path / "out.parquet")[0]["prompt"] == rows[0]["prompt"][:1] and "Answer: $Answer" in rows[0]["prompt"][0]["content"]


def test_conflicting_answers_keep_the_first_and_are_counted(tmp_path):
    rows = [dapo_row("Find $2+3$.", "5", "u1"), dapo_row("Find $2+3$.", "6", "u2")]
    pd.DataFrame(rows).to_parquet(tmp_path / "in.parquet")
    report = prepare("dapo_math_17k", [str(tmp_path / "in.parquet")], tmp_path / "out.parquet")
    assert report.conflicting_answers == 1 and "different answer" in report.summary()
    assert read_rows(tmp_path / "out.parquet")[0]["reward_model"]["ground_truth"] == "5"


@pytest.mark.parametrize("layout", ["huggingfaceh4", "maxwell", "bytedtsinghua"])
def test_aime24_in_each_published_layout(tmp_path, layout):
    if layout == "huggingfaceh4":  # HuggingFaceH4/aime_2024: id, problem, solution, answer, url, year
        frame = pd.DataFrame([{"id": 60, "problem": AIME_PROBLEM, "solution": "...", "answer": "12", "url": "u", "year": "2024"}])
        path, id_ = tmp_path / "aime_2024.parquet", "60"
        frame.to_parquet(path)
    elif layout == "maxwell":  # Maxwell-Jia/AIME_2024: ID, Problem, Solution, Answer (an int)
        path, id_ = write_jsonl(tmp_path / "aime_2024_problems.jsonl", [{"ID": "2024-I-1", "Problem": AIME_PROBLEM, "Solution": "...", "Answer": 12}]), "2024-I-1"
    else:  # BytedTsinghua-SIA/AIME-2024: verl rows, each problem repeated 32 times
        path, id_ = tmp_path / "aime-2024.parquet", "0"
        pd.DataFrame([dapo_row(AIME_PROBLEM, "12", "0")] * 32).to_parquet(path)
    prepare("aime24", [str(path)], tmp_path / "aime24.parquet")
    assert read_rows(tmp_path / "aime24.parquet") == [expected_row("aime24", "test", 0, AIME_PROBLEM, "12", id_)]


def test_aime25_reads_both_opencompass_configs(tmp_path):
    first = write_jsonl(tmp_path / "aime2025-I.jsonl", [{"question": "P1?", "answer": "70"}, {"question": "P2?", "answer": "588"}])
    second = write_jsonl(tmp_path / "aime2025-II.jsonl", [{"question": "Q1?", "answer": "468"}])
    report = prepare("aime25", [str(first), str(second)], tmp_path / "aime25.parquet")
    assert report.rows_written == 3
    assert read_rows(tmp_path / "aime25.parquet") == [
        expected_row("aime25", "test", 0, "P1?", "70", "aime2025-I-0"),
        expected_row("aime25", "test", 1, "P2?", "588", "aime2025-I-1"),
        expected_row("aime25", "test", 2, "Q1?", "468", "aime2025-II-0"),
    ]


def test_amc23_float_answers_become_integers(tmp_path):
    # zwhe99/amc23: id, question, answer (float64), url
    pd.DataFrame([{"id": 0, "question": "How many?", "answer": 27.0, "url": "u"},
                  {"id": 1, "question": "What ratio?", "answer": 0.5, "url": "u"}]).to_parquet(tmp_path / "amc23.parquet")
    prepare("amc23", [str(tmp_path / "amc23.parquet")], tmp_path / "out.parquet")
    assert read_rows(tmp_path / "out.parquet") == [
        expected_row("amc23", "test", 0, "How many?", "27", "0"),
        expected_row("amc23", "test", 1, "What ratio?", "0.5", "1"),
    ]


def test_math500_keeps_subject_and_level(tmp_path):
    # HuggingFaceH4/MATH-500: problem, solution, answer, subject, level, unique_id
    row = {"problem": MATH_PROBLEM, "solution": "...", "answer": "\\frac{5}{6}", "subject": "Prealgebra", "level": 2,
           "unique_id": "test/prealgebra/1.json"}
    write_jsonl(tmp_path / "test.jsonl", [row])
    prepare("math500", [str(tmp_path / "test.jsonl")], tmp_path / "out.parquet")
    assert read_rows(tmp_path / "out.parquet") == [
        expected_row("math500", "test", 0, MATH_PROBLEM, "\\frac{5}{6}", "test/prealgebra/1.json", "Prealgebra", 2)
    ]


def test_json_list_input_and_empty_rows_are_skipped(tmp_path):
    (tmp_path / "amc.json").write_text(json.dumps([{"question": "", "answer": 1.0}, {"question": "Q?", "answer": 3.0}]))
    report = prepare("amc23", [str(tmp_path / "amc.json")], tmp_path / "out.parquet")
    assert report.skipped_empty == 1 and [r["extra_info"]["problem"] for r in read_rows(tmp_path / "out.parquet")] == ["Q?"]


def test_missing_column_names_the_column_and_the_dataset(tmp_path):
    write_jsonl(tmp_path / "aime.jsonl", [{"problem": "P?", "answer": "1"}])  # aime24's layout, not aime25's
    with pytest.raises(ValueError, match=r"opencompass/AIME2025 \(question, answer\): no column 'question'"):
        prepare("aime25", [str(tmp_path / "aime.jsonl")], tmp_path / "out.parquet")
    with pytest.raises(ValueError, match="HuggingFaceH4/MATH-500.*no column 'answer'"):
        write_jsonl(tmp_path / "m.jsonl", [{"problem": "P?", "solution": "s"}])
        prepare("math500", [str(tmp_path / "m.jsonl")], tmp_path / "out.parquet")


def test_empty_input_unknown_dataset_and_missing_file_are_clear(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ValueError, match="has no rows"):
        prepare("amc23", [str(tmp_path / "empty.jsonl")], tmp_path / "out.parquet")
    pd.DataFrame({"question": pd.Series([], dtype=str), "answer": pd.Series([], dtype=float)}).to_parquet(tmp_path / "e.parquet")
    with pytest.raises(ValueError, match="has no rows"):
        prepare("amc23", [str(tmp_path / "e.parquet")], tmp_path / "out.parquet")
    with pytest.raises(ValueError, match="unknown dataset 'gsm8k'; known: dapo_math_17k, aime24, aime25, amc23, math500"):
        prepare("gsm8k", [str(tmp_path / "empty.jsonl")], tmp_path / "out.parquet")
    with pytest.raises(FileNotFoundError, match="no such file"):
        prepare("amc23", [str(tmp_path / "nope.parquet")], tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_a_prompt_outside_the_dapo_template_is_refused(tmp_path):
    row = dapo_row("P?", "1", "u")
    row["prompt"] = [{"role": "user", "content": "P? Put the answer in \\boxed{}."}]
    pd.DataFrame([row]).to_parquet(tmp_path / "in.parquet")
    with pytest.raises(ValueError, match="row 0: the prompt does not follow the DAPO template"):
        prepare("dapo_math_17k", [str(tmp_path / "in.parquet")], tmp_path / "out.parquet")


def test_one_path_not_in_a_list_is_one_input(tmp_path):
    write_jsonl(tmp_path / "amc.jsonl", [{"id": 3, "question": "How many?", "answer": 27.0}])
    prepare("amc23", tmp_path / "amc.jsonl", tmp_path / "from_path.parquet")  # a Path, as from typer or pathlib
    prepare("amc23", str(tmp_path / "amc.jsonl"), tmp_path / "from_str.parquet")
    assert read_rows(tmp_path / "from_path.parquet") == read_rows(tmp_path / "from_str.parquet") == [
        expected_row("amc23", "test", 0, "How many?", "27", "3")
    ]
    with pytest.raises(FileNotFoundError, match="nope.jsonl: no such file"):  # was a TypeError from re.search(Path)
        prepare("amc23", tmp_path / "nope.jsonl", tmp_path / "out.parquet")


@pytest.mark.parametrize("line, kind", [("[1, 2]", "list"), ('"a problem"', "str"), ("7", "int"), ("null", "NoneType")])
@pytest.mark.parametrize("first", [True, False], ids=["first-line", "later-line"])
def test_a_jsonl_line_that_is_not_an_object_names_file_and_line(tmp_path, line, kind, first):
    good = json.dumps({"question": "P?", "answer": "7"})
    lines = [line, good] if first else [good, "", good, line]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    number = 1 if first else 4  # the blank line still counts: the number is the one an editor shows
    with pytest.raises(ValueError, match=rf"in\.jsonl:{number}: expected a JSON object \(one row per line.*got a JSON {kind}"):
        prepare("aime25", [str(tmp_path / "in.jsonl")], tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_a_failed_parquet_write_keeps_the_old_output_and_leaves_no_partial_file(tmp_path, monkeypatch):
    """The output goes through run_files' atomic write: a writer dying mid-file (disk full) changes nothing."""
    import pyarrow.parquet as pq

    write_jsonl(tmp_path / "a.jsonl", [{"question": "P?", "answer": "7"}])
    prepare("aime25", [str(tmp_path / "a.jsonl")], tmp_path / "out.parquet")
    before = (tmp_path / "out.parquet").read_bytes()
    real_write_table = pq.write_table

    def dies_mid_file(table, where, **kwargs):
        if isinstance(where, (str, os.PathLike)):
            where = open(where, "wb")  # noqa: SIM115 (the old code handed a path)
        where.write(b"PAR1 half a file")
        where.flush()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", dies_mid_file)
    write_jsonl(tmp_path / "b.jsonl", [{"question": "Q?", "answer": "8"}])
    with pytest.raises(OSError, match="No space left"):
        prepare("aime25", [str(tmp_path / "b.jsonl")], tmp_path / "out.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "b.jsonl", "out.parquet"]
    assert (tmp_path / "out.parquet").read_bytes() == before
    monkeypatch.setattr(pq, "write_table", real_write_table)
    assert [r["extra_info"]["problem"] for r in read_rows(tmp_path / "out.parquet")] == ["P?"]


def test_cli_writes_the_file_and_reports_errors(tmp_path):
    from sparse_rlvr.cli import app

    write_jsonl(tmp_path / "a.jsonl", [{"question": "P?", "answer": "7"}])
    runner = CliRunner()
    result = runner.invoke(app, ["prepare-data", "aime25", "--input", str(tmp_path / "a.jsonl"), "--output", str(tmp_path / "o.parquet")])
    assert result.exit_code == 0, result.output
    assert "aime25: 1 rows read (opencompass/AIME2025 layout)" in result.output and (tmp_path / "o.parquet").exists()
    result = runner.invoke(app, ["prepare-data", "nope", "-i", str(tmp_path / "a.jsonl"), "-o", str(tmp_path / "x.parquet")])
    assert result.exit_code == 2 and "unknown dataset 'nope'" in result.output


def test_verls_rlhf_dataset_loads_train_and_all_val_files(tmp_path):
    """The output is what verl's own RLHFDataset reads, the four validation files concatenated as in the recipes."""
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    from sparse_rlvr.workflows.tiny_models import tiny_tokenizer

    pd.DataFrame([dapo_row("Find $2+3$.", "5", "u1")] * 2 + [dapo_row("Find $4+4$.", "8", "u2")]).to_parquet(tmp_path / "d.parquet")
    prepare("dapo_math_17k", [str(tmp_path / "d.parquet")], tmp_path / "dapo_math_17k.parquet")
    pd.DataFrame([{"id": 1, "problem": AIME_PROBLEM, "solution": "s", "answer": "12", "url": "u", "year": "2024"}]).to_parquet(tmp_path / "h4.parquet")
    prepare("aime24", [str(tmp_path / "h4.parquet")], tmp_path / "aime24.parquet")
    prepare("aime25", [str(write_jsonl(tmp_path / "aime2025-I.jsonl", [{"question": "P1?", "answer": "70"}]))], tmp_path / "aime25.parquet")
    prepare("amc23", [str(write_jsonl(tmp_path / "amc.jsonl", [{"id": 3, "question": "Q?", "answer": 27.0, "url": "u"}]))], tmp_path / "amc23.parquet")
    prepare("math500", [str(write_jsonl(tmp_path / "m.jsonl", [{"problem": MATH_PROBLEM, "solution": "s", "answer": "5/6",
                                                                  "subject": "Algebra", "level": 3, "unique_id": "x"}]))],
            tmp_path / "math500.parquet")

    config = OmegaConf.create({"prompt_key": "prompt", "max_prompt_length": 2048, "filter_overlong_prompts": True,
                               "filter_overlong_prompts_workers": 1, "truncation": "left", "return_raw_chat": True,
                               "cache_dir": str(tmp_path / "cache")})
    tokenizer = tiny_tokenizer()
    train = RLHFDataset(str(tmp_path / "dapo_math_17k.parquet"), tokenizer, config)
    val = RLHFDataset([str(tmp_path / f"{n}.parquet") for n in ("aime24", "aime25", "amc23", "math500")], tokenizer, config)
    assert len(train) == 2 and len(val) == 4
    item = val[3]
    assert item["data_source"] == "math500" and item["reward_model"] == {"style": "rule", "ground_truth": "5/6"}
    assert item["raw_prompt"][0]["content"] == format_prompt(MATH_PROBLEM) and item["extra_info"]["level"] == 3
    batch = collate_fn([val[i] for i in range(4)])
    assert list(batch["data_source"]) == ["aime24", "aime25", "amc23", "math500"]
    assert list(batch["index"]) == [0, 0, 0, 0]


def test_a_hub_id_loads_every_config_and_split(tmp_path, monkeypatch):
    """aime25's own hub id reads both opencompass configs (datasets.load_dataset stubbed: no hub here)."""
    import datasets

    calls = []

    def load_dataset(name, config=None):
        calls.append((name, config))
        rows = {"AIME2025-I": [{"question": "P1?", "answer": "70"}], "AIME2025-II": [{"question": "Q1?", "answer": "468"}]}[config]
        return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    report = prepare("aime25", ["opencompass/AIME2025"], tmp_path / "aime25.parquet")
    assert calls == [("opencompass/AIME2025", "AIME2025-I"), ("opencompass/AIME2025", "AIME2025-II")]
    assert [r["extra_info"]["problem"] for r in read_rows(tmp_path / "aime25.parquet")] == ["P1?", "Q1?"]
    assert report.rows_written == 2


def test_an_unreachable_hub_says_to_pass_local_files(tmp_path, monkeypatch):
    import datasets

    def offline(name, config=None):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(RuntimeError, match="pass the local file"):
        prepare("math500", ["HuggingFaceH4/MATH-500"], tmp_path / "out.parquet")
