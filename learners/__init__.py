"""The algorithms, as pure functions of (model, data, callables, config); see DESIGN.md.

A learner gets its judges and rewards passed in and never reaches into a graph or the store.
So far: ``metrics`` (answer matching). The learners themselves (SAC, SELF-PARAM, CORY) arrive
with their issues, one file each.
"""
