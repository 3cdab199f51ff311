"""The report's prose: what the task builds in, what the run measured, and how to read the ablation.

Plain text (the page escapes it); numbers are filled in from results.json so the words match the run.
"""

from __future__ import annotations

from typing import Any


def story(results: dict[str, Any]) -> dict[str, str]:
    """Section title -> paragraph."""
    s = results["shift"]
    sections = {
        "What the task builds in": (
            "Prompts are mod-10 expressions such as 3+4*5= and 2*3+4*5=. The base model was trained on a 50/50 mix "
            "of two strategies where they disagree: operator precedence (right) and left to right (wrong). So by "
            "construction the base model is unsure at exactly one token per fork prompt, the planted fork (the first "
            "response token, or the token after a first step both strategies share), and reliable everywhere else. "
            "Where the forks are is therefore known, not discovered."),
        "What the run measured": (
            f"GRPO through verl's trainer raised held-out accuracy from {results['base_accuracy']:.2f} to "
            f"{results['rl_accuracy']:.2f} in {results['steps']} steps. Nothing told the tools where the forks are: "
            f"the exact per-token JS between the base and the RL model is below 1e-3 at "
            f"{s['frac_js_below_1e-3']:.0%} of response tokens, {s['planted_fork_recall_top5pct']:.0%} of the planted "
            f"forks are among the 5% of positions with the highest JS, and the forks hold "
            f"{s['js_share_at_forks']:.0%} of all JS. Cross-sampling then shows the few high-JS tokens carry the gain: "
            "letting the RL model choose only where JS exceeds eps lifts the base model to the RL model's accuracy, "
            "and letting the base model choose there takes it away, while as many swaps at random positions do not."),
    }
    if results.get("ablation"):
        sections["Reading the weighting ablation"] = (
            "Divergence weighting rescales each token's advantage by w = 1 + s (sigmoid(alpha JS) - 1/2). At the "
            "start of GRPO the policy is the base model, so JS is 0 everywhere and every token gets the same w; "
            "later almost the whole policy gradient sits on the fork token anyway, because everywhere else both "
            "strategies agree and the advantage-weighted log-prob gradients of a group cancel. A near-uniform "
            "rescale of one token's gradient is undone by Adam's per-parameter normalisation, so under Adam the "
            "settings are expected to learn alike; a difference, if any, shows in the spread over seeds above. "
            "A prototype saw none under Adam and a small, consistent one under plain SGD.")
    return sections
