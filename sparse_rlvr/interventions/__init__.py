"""Cross-sampling interventions between a base and an RL model, graded by the verifier."""
