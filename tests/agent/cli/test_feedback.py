"""`reverie feedback ...`: add, import, clean, list, show and export."""

import json


def test_feedback_import_clean_list_show_export(cli, tmp_path, one_line_error):
    data = tmp_path / "prefs.jsonl"
    good = {"prompt": "What is 2+2?", "chosen": "4.", "rejected": "5.", "source": "rater_A"}
    hh = tmp_path / "hh.jsonl"
    data.write_text("\n".join([json.dumps(good), "{oops", json.dumps({"prompt": "Q?", "chosen": "a"}),
                               json.dumps({**good, "prompt": "What is 3+3?", "chosen": "6."})]) + "\n")
    hh.write_text(json.dumps({"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away."}) + "\n")
    code, out, _ = cli("feedback", "import", str(data), "--json")
    report = json.loads(out)
    assert code == 0 and report["imported"] == [{"line": 1, "feedback_id": 1}, {"line": 4, "feedback_id": 2}]
    assert [e["line"] for e in report["errors"]] == [2, 3]
    code, _, err = cli("feedback", "import", str(hh), "--format", "hh", "--source", "hh-sample")
    assert code == 0 and "imported 1 preference pair(s); 0 line(s) refused" in err
    code, _, err = cli("feedback", "import", str(hh), "--format", "csv")
    assert code == 2 and one_line_error(err) and "unknown format" in err

    # The default committee on the tiny model: its votes are noise; this checks the command.
    code, out, _ = cli("feedback", "clean", "--json")
    cleaned = json.loads(out)
    assert code == 0 and cleaned["run_id"] == 1 and len(cleaned["items"]) == 3
    # Its card is at chance (planted, 0.62 < 0.80): an audit, every label kept, the proposals recorded.
    assert cleaned["mode"] == "audit" and "0.62 of 24 labelled pairs" in cleaned["mode_reason"]
    assert all(i["action"] == "keep" and i["proposed"] in ("keep", "flip", "remove") and i["reason"] and i["votes"]
               for i in cleaned["items"])
    assert {i["source"] for i in cleaned["items"]} == {"rater_A", "hh-sample"}
    code, out, _ = cli("feedback", "clean")
    assert code == 0 and "nothing new since view 1" in out
    code, out, _ = cli("feedback", "clean", "--method", "vote_all_r", "--dry-run")
    assert code == 0 and "by source of unreliability" in out and "mode: audit · the committee prefers" in out
    code, _, err = cli("feedback", "clean", "--method", "magic")
    assert code == 2 and one_line_error(err)

    code, out, _ = cli("feedback", "list", "--json")
    assert code == 0 and [f["source"] for f in json.loads(out)["feedback"]] == ["rater_A", "rater_A", "hh-sample"]
    code, out, _ = cli("feedback", "show", "1", "--json")
    assert code == 0 and json.loads(out)["decisions"][0]["run_id"] == 1
    code, _, err = cli("feedback", "show", "99")
    assert code == 3 and one_line_error(err)
    code, out, _ = cli("feedback", "export")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 3 and rows[0]["chosen"] == [{"role": "assistant", "content": "4."}]
    code, out, _ = cli("feedback", "export", "--cleaned")
    assert code == 0 and len(out.splitlines()) == 3 - cleaned["counts"]["remove"]


def test_export_repair_makes_each_prompts_pairs_transitive(cli, tmp_path):
    data = tmp_path / "prefs.jsonl"
    pairs = [("Best fruit?", "Mango.", "Apple."), ("Best fruit?", "Apple.", "Prune."), ("Other?", "Yes.", "No.")]
    data.write_text("".join(json.dumps({"prompt": p, "chosen": c, "rejected": r}) + "\n" for p, c, r in pairs))
    assert cli("feedback", "import", str(data))[0] == 0
    code, out, _ = cli("feedback", "export", "--repair")
    rows = {(r["prompt"][0]["content"], r["chosen"][0]["content"], r["rejected"][0]["content"])
            for r in map(json.loads, out.splitlines())}
    # Mango > Apple and Apple > Prune give Mango > Prune too; the other prompt keeps its one pair.
    assert code == 0 and rows == {("Best fruit?", "Mango.", "Apple."), ("Best fruit?", "Apple.", "Prune."),
                                  ("Best fruit?", "Mango.", "Prune."), ("Other?", "Yes.", "No.")}
