"""Verifiable rewards: math-answer grading that never hangs and never executes model text."""
