"""`reverie catalogue ...` and `reverie recommend` in this process on the tiny model."""

from __future__ import annotations

import json


def test_catalogue_commands_and_recommend(cli, one_line_error, tmp_path, shared_data):
    code, out, err = cli("recommend", "anything")
    assert code == 2 and one_line_error(err) and "reverie catalogue import" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": "x", "title": "Fine"}\n{"title": "no id"}\n\xff\n')
    code, out, err = cli("catalogue", "import", str(bad))
    assert code == 2 and one_line_error(err) and "line 2: missing id" in err and "line 3: not UTF-8" in err
    code, out, err = cli("catalogue", "import", str(shared_data / "recsys" / "catalogue.jsonl"), "--name", "films")
    assert code == 0 and "imported 60 items as catalogue 'films'" in err
    code, out, _ = cli("catalogue", "list", "--json")
    assert [c["name"] for c in json.loads(out)["catalogues"]] == ["films"]
    code, out, _ = cli("catalogue", "show", "films", "--item", "m06")
    assert code == 0 and '"title": "Hollow Pines"' in out

    code, out, err = cli("recommend", "A horror film under 100 minutes, nothing before 1990. I've seen Hollow Pines.",
                         "-k", "3", "--json")
    result = json.loads(out)
    assert code == 0 and {p["id"] for p in result["items"]} == {"m20", "m50"}
    assert result["mentioned"] == [{"id": "m06", "title": "Hollow Pines"}]
    conversation = tmp_path / "talk.json"
    conversation.write_text(json.dumps({"turns": [{"role": "user", "content": "I love heist movies."},
                                                  {"role": "assistant", "content": "Anything to avoid?"},
                                                  {"role": "user", "content": "Nothing rated R."}]}))
    code, out, err = cli("recommend", "--file", str(conversation), "-k", "3")
    assert code == 0 and "The Honey Thieves" in out and "Carrow Bank" not in out and "Counterfeit Summer" not in out
    assert "only 1 item of the catalogue meets everything asked" in err and "ranked by score" in err
    code, out, err = cli("recommend", "--file", str(conversation), "--thread", "t")
    assert code == 2 and one_line_error(err)
    code, out, err = cli("catalogue", "remove", "films")
    assert code == 0 and "removed catalogue 'films'" in err
    code, out, err = cli("catalogue", "show", "films")
    assert code == 3 and one_line_error(err)
