"""`reverie teach` and `reverie memory ...`: what a user taught, searched, forgotten and exported."""

import json


def test_teach_memory_and_feedback_commands(cli, tmp_path):
    facts = tmp_path / "facts.txt"
    facts.write_text("My dog is called Pimento.\n\nI live in Port Halvik.\n", encoding="utf-8")
    code, out, _ = cli("teach", "--file", str(facts), "--user", "ana", "--json")
    assert code == 0 and json.loads(out) == {"experience_ids": [1, 2]}
    code, out, _ = cli("memory", "search", "what is my dog called", "--user", "ana", "--json")
    assert json.loads(out)["hits"][0]["id"] == 1
    code, out, _ = cli("memory", "forget", "1", "--json")
    forgotten = json.loads(out)
    assert forgotten["experience"]["status"] == "forgotten" and forgotten["version"] is None  # in no adapter
    code, out, _ = cli("memory", "list", "--json")
    assert [m["id"] for m in json.loads(out)["memories"]] == [2]

    _, out, _ = cli("ask", "Where do I live?", "--user", "ana", "--json")
    turn = json.loads(out)["turn_id"]
    code, out, _ = cli("feedback", str(turn), "--fix", "You live in Port Halvik.", "--json")
    assert code == 0 and json.loads(out)["kind"] == "correction" and json.loads(out)["turn_id"] == turn
    code, out, _ = cli("feedback", str(turn), "--up", "--comment", "nice", "--json")
    assert json.loads(out)["payload"] == {"text": "nice"}
    code, out, _ = cli("memory", "export", "--user", "ana")
    exported = json.loads(out)
    assert [f["kind"] for f in exported["feedback"]] == ["correction", "up"]
    assert [e["source"] for e in exported["experiences"]] == ["taught", "taught", "correction"]
    code, out, _ = cli("memory", "reindex", "--json")
    assert json.loads(out) == {"indexed": 3}  # 2 live experiences + 1 user turn


def test_teach_refuses_non_utf8_and_binary_files_whole(cli, tmp_path, one_line_error):
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("Caf\xe9 au lait.\nSecond line.\n".encode("latin-1"))
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x89PNG\x00\x00\x01")
    for path, message in ((latin, "is not UTF-8"), (binary, "binary file")):
        code, _, err = cli("teach", "--file", str(path))
        assert code == 2 and one_line_error(err) and message in err
    assert json.loads(cli("memory", "list", "--json")[1]) == {"memories": []}
