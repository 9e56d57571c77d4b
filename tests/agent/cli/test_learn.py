"""`reverie learn` and `reverie retention` on the tiny model (what the night does, not what it learns)."""

import json


def test_learn_and_retention_commands(cli, tmp_path, one_line_error):
    fast = ("--set", "selfparam.epochs=1", "--set", "synthesis.samples=1", "--set", "gate.min_efficacy=0")
    code, out, _ = cli(*fast, "learn")
    assert code == 0 and "nothing new to consolidate" in out
    code, _, err = cli("teach", "Teodor works in Port Halvik.", "--probe", "Where does Teodor work")
    assert code == 2 and one_line_error(err) and "QUESTION=ANSWER" in err
    code, _, _ = cli("teach", "My brother Teodor works in Port Halvik.", "--probe", "Where does Teodor work?=Port Halvik")
    assert code == 0
    code, out, _ = cli(*fast, "learn", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["dry_run"] and json.loads(out)["run_id"] is None
    films = tmp_path / "films.jsonl"
    films.write_text('{"id": "d1", "title": "Good Boy Rex", "tags": ["dogs"]}\n{"id": "h1", "title": "Night Tide", '
                     '"tags": ["sea"]}\n{"id": "c1", "title": "Chess Club", "tags": ["chess"]}\n')
    assert cli("catalogue", "import", str(films))[0] == 0
    code, out, _ = cli(*fast, "learn", "--json")
    report = json.loads(out)
    assert code == 0 and report["version"] == "v1" and report["promoted"]
    assert set(report["tastes"]) == {"films"}  # read from the promoted weights, for every catalogue
    assert set(report["figures"]) >= {"efficacy", "general_contains", "perplexity"}
    assert report["synthesis"]["1"]["probes"] == ["Where does Teodor work?"]  # the given one, no other

    plot = tmp_path / "retention.png"
    code, out, err = cli("retention", "--json", "--plot", str(plot))
    retention = json.loads(out)
    assert code == 0 and [r["version"] for r in retention["runs"]] == ["v1"]
    assert retention["points"][0]["age"] == 0 and retention["by_age"][0]["experiences"] == 1
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, _ = cli("retention")
    assert code == 0 and "v1" in out and "by age" in out
    assert cli("teach", "I adore films about dogs.")[0] == 0
    code, out, _ = cli(*fast, "learn")
    assert code == 0 and "promoted v2" in out and "tastes read from the new weights for catalogue films:" in out

    code, _, err = cli("retention", "--plot", str(tmp_path / "retention.txt"))
    assert code == 2 and one_line_error(err) and "PNG" in err
    code, _, err = cli("learn", "--only", "ppo")
    assert code == 2 and one_line_error(err) and "a night's steps are: clean, selfparam, cory" in err
    code, _, err = cli("learn", "--only", "cory")
    assert code == 2 and one_line_error(err) and "no reward to refine with: set [refine] reward" in err

    # An adapter that hurts the model is trained again with the KL alone, and the output says so.
    assert cli("teach", "My cat Miso eats salmon on Sundays.")[0] == 0
    strict = ("--set", "selfparam.epochs=2", "--set", "selfparam.lr=0.05", "--set", "synthesis.samples=1",
              "--set", "gate.min_efficacy=0", "--set", "gate.perplexity_tolerance=0")
    code, out, _ = cli(*strict, "learn")
    assert code == 0 and "(trained again with the KL alone: chat perplexity rose from" in out
