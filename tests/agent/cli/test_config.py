"""`reverie config show` and `reverie paths`."""

import json


def test_config_show_and_paths(cli, home):
    code, out, _ = cli("config", "show", "--json")
    shown = json.loads(out)
    assert shown["settings"]["max_new_tokens"] == 6 and shown["sources"]["max_new_tokens"] == "flag"
    assert shown["settings"]["home"] == str(home)
    code, out, _ = cli("paths", "--json")
    assert json.loads(out)["database"] == str(home / "reverie.db")


def test_config_show_names_section_settings_by_their_dotted_key(cli):
    code, out, _ = cli("--set", "selfparam.lr=0.002", "config", "show", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["settings"]["selfparam"]["lr"] == 0.002
    assert shown["sources"]["selfparam.lr"] == "flag" and shown["sources"]["gate.min_efficacy"] == "default"
    code, out, _ = cli("config", "show")
    row = next(cells for line in out.splitlines() if (cells := line.split())[:1] == ["selfparam.lora_alpha"])
    assert row[1:] == ["32", "default"]


def test_config_show_says_what_the_card_set_and_why(cli):
    code, out, _ = cli("config", "show", "--json")
    judges = json.loads(out)["judges"]
    assert code == 0 and judges["code_check"]["value"] == "off" and "tau-b -0.20" in judges["code_check"]["reason"]
    code, out, _ = cli("--set", "judges.min_committee_accuracy=0.5", "config", "show")
    assert "cleaning: clean · the committee prefers the better answer on 0.62" in out
