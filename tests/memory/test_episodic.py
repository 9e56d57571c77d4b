import subprocess
import sys

from memory.episodic import EpisodicMemory


def test_search_is_per_user_and_filtered(tmp_path):
    memory = EpisodicMemory(tmp_path / "ep")
    memory.add("experience", [1, 2], ["My cat is Misu.", "My dog is Rex."], ["ana", "bob"], status=["short_term"] * 2)
    memory.add("turn", [7], ["I adore my cat"], ["ana"], thread_id=["t"])
    hits = memory.search("what pet do I have", user="ana", k=5)
    assert [(h.kind, h.id) for h in hits] == [("experience", 1)]  # bob's dog never shows up for ana
    both = memory.search("what pet do I have", user="ana", kinds=("experience", "turn"), statuses=None)
    assert {(h.kind, h.id) for h in both} == {("experience", 1), ("turn", 7)}
    assert memory.search("what pet do I have", user="ana", min_score=0.99) == []
    assert memory.search("anything", user="nobody") == []


def test_a_reader_sees_what_another_process_wrote(tmp_path):
    # chromadb 1.5's embedded client keeps a stale index: without the generation counter this
    # search misses the new entry, or fails with "Error finding id".
    folder = tmp_path / "ep"
    reader = EpisodicMemory(folder)
    reader.add("experience", [1], ["The sky is blue."], ["ana"], status=["short_term"])
    assert len(reader.search("sky", user="ana")) == 1
    writer = (
        "from pathlib import Path; from memory.episodic import EpisodicMemory; "
        f"EpisodicMemory(Path({str(folder)!r})).add('experience', [2], ['My boat is the Albatross.'], ['zoe'], "
        "status=['short_term'])"
    )
    subprocess.run([sys.executable, "-c", writer], check=True)
    hits = reader.search("what is my boat called", user="zoe")
    assert [h.id for h in hits] == [2]
    assert reader.count() == 2
