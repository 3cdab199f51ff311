"""Training plugins for verl: CPU platform and rollout, divergence-weighted advantages, token-shift monitor."""
