"""Shared core: verifiable math-answer rewards that never hang and never execute model text."""
