"""The tools around training, each a package: `advise` (the guide's checklist with evidence from a
bake-off), `compare` (models and baselines on one split), `benchmark` (speed, latency, memory)."""
