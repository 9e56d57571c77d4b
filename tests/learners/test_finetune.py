"""The cross-entropy baselines (FT(S), FT(C)) learn on the tiny model and train only LoRA weights."""

from agent.llm.transformers_backend import load_pretrained
from learners.finetune import train_ce
from learners.training import TrainConfig


def test_cross_entropy_loss_falls_on_a_repeated_example(tiny_dir):
    import torch

    tokenizer, model = load_pretrained(tiny_dir, torch.device("cpu"), torch.float32)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    examples = [("Question: what is my dog called?\\nAnswer:", " Your dog is called Pimento."), ("", "Pimento is a greyhound.")]
    result = train_ce(model, tokenizer, examples, TrainConfig(epochs=30, batch_size=2, lr=1e-2))
    assert result.steps == 30 and result.losses[-1] < result.losses[0] - 0.5  # from ln(vocab) ~ 10.8
    base = result.model.get_base_model()
    assert all(torch.equal(before[n.replace(".base_layer", "")], p) for n, p in base.named_parameters() if "lora_" not in n)
