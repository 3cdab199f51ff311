"""Grade responses with the project's math verifier."""

from __future__ import annotations

from typing import Any


def grade(responses: list[str], answers: list[Any]) -> list[dict[str, Any]]:
    """[{"acc", "score", "reason", "pred"}] per response, from sparse_rlvr's verifier."""
    from sparse_rlvr.core.verification.math import score_batch

    results = score_batch(responses, [str(a) for a in answers])
    return [{"acc": bool(r["acc"]), "score": float(r["score"]), "reason": r["reason"], "pred": r.get("pred")} for r in results]
