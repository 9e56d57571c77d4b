"""The CORY harness's summary: iterations to reach PPO's final reward, and the front at equal reward."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from reproduce_cory import summarise  # noqa: E402


def run(rewards: list[float], kls: list[float], held_out: float = 0.3) -> dict:
    return {"curve": [{"reward": r, "kl": k} for r, k in zip(rewards, kls)], "s_per_iteration": 1.0,
            "eval": {"reward": held_out, "kl": kls[-1], "distinct2": 0.9}}


def test_reaching_ppos_final_reward_and_the_kl_at_equal_reward_read_full_windows_of_the_curves():
    ramp = [i / 10 for i in range(10)]  # PPO: reward 0.0 .. 0.9, KL rising twice as fast
    runs = {"s/ppo/0": run(ramp, [2 * r for r in ramp]),
            # CORY: PPO's final window mean (0.7) reached by its 5th iteration, at a lower KL
            "s/cory/0": run([1.0] * 10, [0.1] * 10),
            # never reaches PPO's final reward; PPO is past its 0.15 in its first full window (0.2)
            "s/cory-paper/0": run([0.15] * 10, [0.5] * 10)}
    out = summarise(runs, "s", ["ppo", "cory", "cory-paper"])
    assert out["cory"]["fraction_of_ppo_iterations_to_reach_ppo_final"] == [0.5]
    # its final reward 1.0 is above all of PPO's windows: no KL of PPO's to set beside it
    assert out["cory"]["kl_at_equal_training_reward"] == [{"kl": 0.1, "ppo_kl": None}]
    assert out["cory-paper"]["fraction_of_ppo_iterations_to_reach_ppo_final"] == [None]
    assert out["cory-paper"]["kl_at_equal_training_reward"] == [{"kl": 0.5, "ppo_kl": 0.4}]
    assert out["ppo"]["seeds"] == 1 and "base" not in out
