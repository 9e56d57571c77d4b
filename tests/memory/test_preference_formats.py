"""Preference datasets: TRL's forms and HH-RLHF text in, malformed lines reported by number."""

import json

from memory.preference_formats import read_preferences, to_trl

HH_PREFIX = "\n\nHuman: Hi!\n\nAssistant: Hello, how can I help?\n\nHuman: What colour is the sky?\n\nAssistant:"


def test_every_trl_form_and_hh_give_the_same_shape():
    convo = [{"role": "user", "content": "What colour is the sky?"}]
    lines = [
        json.dumps({"prompt": "What colour is the sky?", "chosen": "Blue.", "rejected": "Green.", "source": "rater_A"}),
        json.dumps({"prompt": convo, "chosen": [{"role": "assistant", "content": "Blue."}],
                    "rejected": [{"role": "assistant", "content": "Green."}]}),
        json.dumps({"chosen": [*convo, {"role": "assistant", "content": "Blue."}],
                    "rejected": [*convo, {"role": "assistant", "content": "Green."}]}),
    ]
    good, bad = read_preferences(lines, "trl")
    assert bad == [] and [n for n, _ in good] == [1, 2, 3]
    assert all((p.prompt, p.chosen, p.rejected) == (convo, "Blue.", "Green.") for _, p in good)
    assert good[0][1].source == "rater_A" and good[1][1].source is None

    [(_, hh)], bad = read_preferences([json.dumps({"chosen": HH_PREFIX + " Blue.", "rejected": HH_PREFIX + " Green."})], "hh")
    assert bad == [] and (hh.chosen, hh.rejected) == ("Blue.", "Green.")
    assert [m["role"] for m in hh.prompt] == ["user", "assistant", "user"] and hh.prompt[0]["content"] == "Hi!"


def test_malformed_lines_are_reported_with_their_numbers_and_the_rest_read():
    ok = json.dumps({"prompt": "Q?", "chosen": "a", "rejected": "b"})
    lines = [ok, "{not json", "", json.dumps({"prompt": "Q?", "chosen": "a"}), json.dumps(["a", "b"]),
             json.dumps({"prompt": "Q?", "chosen": "same", "rejected": "same"}),
             json.dumps({"chosen": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "1"}],
                         "rejected": [{"role": "user", "content": "y"}, {"role": "assistant", "content": "2"}]}),
             json.dumps({"prompt": "Q?", "chosen": [{"role": "robot", "content": "a"}], "rejected": "b"}), ok]
    good, bad = read_preferences(lines, "trl")
    assert [n for n, _ in good] == [1, 9]
    reasons = dict(bad)
    assert set(reasons) == {2, 4, 5, 6, 7, 8}  # line 3 is blank: skipped, not an error
    assert "rejected" in reasons[4] and "JSON object" in reasons[5] and "same answer" in reasons[6]
    assert "share every message" in reasons[7] and "role" in reasons[8]
    _, bad = read_preferences([json.dumps({"chosen": "no turns here", "rejected": "x"})], "hh")
    assert "Human" in bad[0][1]


def test_export_is_trl_conversational():
    row = to_trl([{"role": "user", "content": "Q?"}], "a", "b")
    assert row == {"prompt": [{"role": "user", "content": "Q?"}], "chosen": [{"role": "assistant", "content": "a"}],
                   "rejected": [{"role": "assistant", "content": "b"}]}
    good, _ = read_preferences([json.dumps(row)], "trl")  # and reads back as itself
    assert (good[0][1].chosen, good[0][1].rejected) == ("a", "b")
