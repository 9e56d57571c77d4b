"""`reverie models ...`: the version line, promote, rollback, diff and prune."""

import json


def test_models_commands(cli, tiny_dir, tiny_dir_b, home, one_line_error):
    import shutil

    from agent import Agent

    code, out, _ = cli("models", "list", "--json")
    assert code == 0 and json.loads(out)["active"] == "base"
    with Agent.open(home, model=str(tiny_dir)) as bot:
        for parent, note in (("base", "first"), ("v1", "second")):
            bot.versions.create(parent=parent, learner="test", manifest={"note": note},
                                write=lambda folder: [shutil.copy(f, folder / f.name) for f in tiny_dir_b.iterdir()])
    assert json.loads(cli("models", "promote", "v2", "--reason", "test", "--json")[1])["id"] == "v2"
    listed = json.loads(cli("models", "list", "--json")[1])
    assert listed["active"] == "v2" and [v["id"] for v in listed["versions"]] == ["base", "v1", "v2"]
    assert json.loads(cli("models", "show", "v2", "--json")[1])["manifest"]["note"] == "second"
    assert json.loads(cli("models", "diff", "v1", "v2", "--json")[1])["changed"]["note"] == {"a": "first", "b": "second"}
    assert json.loads(cli("ask", "hi", "--json")[1])["model_version"] == "v2"
    assert json.loads(cli("models", "rollback", "--json")[1])["id"] == "v1"
    assert json.loads(cli("models", "prune", "--keep", "0", "--json")[1]) == {"pruned": ["v2"]}
    code, _, err = cli("models", "promote", "v2")
    assert code == 2 and one_line_error(err) and "pruned" in err
    code, _, err = cli("models", "show", "v7")
    assert code == 3 and one_line_error(err)


def test_models_card_prints_the_cached_card_and_the_modes_it_sets(cli):
    # The tiny model's card is planted at chance (tests/conftest.py): cached, so nothing is measured.
    code, out, _ = cli("models", "card", "--json")
    card = json.loads(out)
    assert code == 0 and card["figures"]["committee"]["accuracy"] == 0.62 and card["measured_at"].startswith("2026")
    code, out, _ = cli("models", "card")
    assert code == 0 and "CodeJudge binary" in out and "tau-b -0.20" in out
    assert "cleaning: audit · the committee prefers the better answer on 0.62 of 24 labelled pairs" in out
    assert "code check: off" in out and "choice check: unavailable" in out
