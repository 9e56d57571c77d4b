"""`reverie judge ...`: CodeJudge, ranking and consistency, on the tiny model (shape, not judgement)."""

import json


def test_judge_commands(cli, tmp_path):
    # The tiny model's verdicts are noise: this checks the commands' shape, not their judgement.
    problem, code_file = tmp_path / "problem.txt", tmp_path / "code.py"
    problem.write_text("Return the sum of a list.\n")
    code_file.write_text("def total(xs):\n    return sum(xs)\n")
    code, out, _ = cli("judge", "code", "--problem", str(problem), "--code", str(code_file), "--mode", "graded", "--json")
    verdict = json.loads(out)
    assert code == 0 and verdict["kind"] == "code" and verdict["mode"] == "graded"
    assert verdict["result"] in ("yes", "no", "invalid") and verdict["language"] == "Python"

    code, out, _ = cli("judge", "rank", "--instruction", "Which number is larger?", "--json", "--", "3", "-1", "12")
    ranking = json.loads(out)
    assert code == 0 and sorted(ranking["order"]) == [0, 1, 2] and ranking["items"] == ["3", "-1", "12"]
    assert set(ranking["raw"]) == {"s_comm", "s_neg", "s_tran_3"} and ranking["calibrated"]["s_comm"] == 1.0

    sets = tmp_path / "sets.jsonl"
    sets.write_text('{"id": "n", "instruction": "Which is larger?", "negated_instruction": "Which is smaller?", '
                    '"items": ["1", "2", "3"], "true_order": [2, 1, 0]}\n')
    code, out, _ = cli("judge", "consistency", str(sets), "--json")
    report = json.loads(out)
    assert code == 0 and report["sets"][0]["id"] == "n" and report["comparator_calls"] == 12
    assert set(report["overall"]["calibrated"]) == {"s_comm", "s_neg", "s_tran_3", "agreement"}
    code, out, _ = cli("judge", "consistency", str(sets))
    assert code == 0 and "overall calibrated" in out


def test_judge_refuses_bad_input_in_one_line(cli, tmp_path, one_line_error):
    problem, empty, binary = tmp_path / "p.txt", tmp_path / "empty.py", tmp_path / "blob.bin"
    problem.write_text("Sum a list.")
    empty.write_text("   \n")
    binary.write_bytes(b"\x00\x01def")
    sets = tmp_path / "sets.jsonl"
    sets.write_text('{"instruction": "Which?", "items": ["a", "b"]}\n{"instruction": "Which?", "items": ["a"]}\n')
    for args, message in [
        (["--code", str(empty)], "code is empty"),
        (["--code", str(binary)], "binary file"),
        (["--code", str(problem), "--language", "cobol"], "unknown language 'cobol'"),
        (["--code", str(problem), "--mode", "fuzzy"], "unknown mode"),
        (["--code", str(tmp_path / "missing.py")], "cannot read"),
    ]:
        code, _, err = cli("judge", "code", "--problem", str(problem), *args)
        assert code == 2 and one_line_error(err) and message in err, (args, err)
    code, _, err = cli("judge", "consistency", str(sets))
    assert code == 2 and one_line_error(err) and "line 2: ranking needs at least two items" in err
    code, _, err = cli("judge", "rank", "--instruction", "Which?", "only one")
    assert code == 2 and one_line_error(err)
