"""A planted reward both RL learners must raise on the embedded model (tests/learners/test_ppo.py,
test_cory.py). The tiny random model cannot: its logits are almost uniform over 49k tokens, so
no rule over text gives it a gradient worth following (measured)."""

from dataclasses import dataclass

import pytest


@dataclass
class Planted:
    tokenizer: object
    query: str
    folder: object

    def model(self):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(self.folder)

    @staticmethod
    def reward(queries, responses):  # the rule: begin the answer with "It"
        return [1.0 if r.strip().startswith("It") else 0.0 for r in responses]

    def rate(self, model, samples: int = 32) -> float:
        """The share of ``samples`` sampled answers (seeded) that the rule rewards."""
        import torch

        from learners import ppo

        torch.manual_seed(123)
        ids = self.tokenizer(self.query, add_special_tokens=False)["input_ids"]
        batch = ppo.rollout(model, self.tokenizer, [ids] * samples, ppo.PPOConfig(max_new_tokens=4))
        return sum(self.reward(None, self.tokenizer.batch_decode(batch.response_ids, skip_special_tokens=True))) / samples


@pytest.fixture(scope="module")
def planted(embedded_dir) -> Planted:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(embedded_dir)
    query = tokenizer.apply_chat_template([{"role": "user", "content": "Tell me about your day."}], tokenize=False,
                                          add_generation_prompt=True)
    return Planted(tokenizer, query, embedded_dir)
