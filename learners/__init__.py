"""The algorithms, as pure functions of (model, data, callables, config); see ../shared/DESIGN.md.

One learner a file, read top to bottom in its paper's order with its departures listed:
``selfparam`` (SELF-PARAM), ``finetune`` (the cross-entropy baselines), ``sac`` (Source-Aware
Cleaning), ``repair`` (REPAIR). What they stand on: ``training`` (the shared loop: config, LoRA,
accelerate, optimiser step, progress), ``synthesis`` and ``questions`` (QA pairs about an
experience), ``evaluate`` (probes, general ability, the gate), ``metrics``.

A learner gets its judges and rewards passed in, never reaches into a graph or the store, and
never imports another learner. Nothing is re-exported here: importing one costs no other.
"""
