"""Offline token-shift analysis between a base and an RL checkpoint (statistics, figures, HTML report)."""
