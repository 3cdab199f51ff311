"""`sparse-rlvr demo-shift`: the divergence core and the shift analysis on a tiny pair built in code (no downloads)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_TEXT = "Compute 12*7-5. First 12*7=84, then 84-5=79. The answer is \\boxed{79}."


def demo(
    out: Annotated[Path, typer.Option(help="Where the tiny checkpoints, data and shift report go.")] = Path("runs/demo"),
    shift: Annotated[float, typer.Option(help="How far the policy's weights move from the base (0 = identical).")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the tiny models' weights.")] = 0,
    top: Annotated[int, typer.Option(help="Show this many highest-JS tokens of the sample response.")] = 10,
) -> None:
    """Tiny base vs perturbed 'policy': a token-level JS table, then `sparse-rlvr shift` with its report."""
    from rich.console import Console

    from sparse_rlvr.core.errors import UserError
    from sparse_rlvr.core.inputs import check_out_dir

    check_out_dir(out, "--out")
    if top < 1:
        raise UserError(f"--top must be >= 1, got {top}; it is how many tokens the table shows")
    if shift < 0:
        raise UserError(f"--shift must be >= 0 (0 = identical models), got {shift:g}")

    from sparse_rlvr.analysis.config import ShiftConfig
    from sparse_rlvr.analysis.console import print_summary
    from sparse_rlvr.analysis.runner import run_shift
    from sparse_rlvr.workflows.tiny_models import save_checkpoint, tiny_pair

    console = Console()
    base, policy, tokenizer = tiny_pair(seed=seed, shift=shift)
    _print_token_table(console, base, policy, tokenizer, top)
    for name, model in (("base", base), ("policy", policy)):
        save_checkpoint(model, tokenizer, out / name)
    data = out / "responses.jsonl"
    data.write_text("".join(json.dumps({
        "prompt": f"Compute {a}*{b}+{c}.",
        "response": f"First {a}*{b}={a * b}, then {a * b}+{c}={a * b + c}. The answer is \\boxed{{{a * b + c}}}.",
    }) + "\n" for a, b, c in [(i % 13 + 2, i % 7 + 3, i % 5) for i in range(64)]))
    summary = run_shift(ShiftConfig(base=str(out / "base"), policies=[str(out / "policy")], data=str(data),
                                    out=str(out / "shift"), shard_size=16))
    print_summary(console, summary)
    console.print(f"report: {out / 'shift' / 'report.html'} (open it in a browser; hover tokens for candidates)")


def _print_token_table(console, base, policy, tokenizer, top: int) -> None:
    """The highest-JS tokens of one teacher-forced response, straight from token_divergence."""
    import torch
    from rich.table import Table

    from sparse_rlvr.core.divergence import token_divergence

    ids = torch.tensor([tokenizer(DEFAULT_TEXT)["input_ids"]])
    with torch.no_grad():
        # logits at position t predict token t+1: compare the distributions that chose each token
        result = token_divergence(base(ids).logits[0, :-1], policy(ids).logits[0, :-1], vocab_size=len(tokenizer))
    tokens = tokenizer.convert_ids_to_tokens(ids[0, 1:].tolist())
    table = Table(title=f"Top {top} tokens by JS(base, policy) of {len(tokens)} in {DEFAULT_TEXT!r}")
    for column in ("pos", "token", "JS", "KL(b||p)", "H(base)", "top-1 agree", "rank in base"):
        table.add_column(column, justify="right")
    for i in result.js.argsort(descending=True)[:top].tolist():
        table.add_row(
            str(i + 1), repr(tokenizer.convert_tokens_to_string([tokens[i]])), f"{result.js[i]:.4f}",
            f"{result.kl_base_policy[i]:.4f}", f"{result.base_entropy[i]:.3f}",
            "yes" if result.top1_agree[i] else "no", str(int(result.policy_top1_rank_in_base[i])),
        )
    console.print(table)
    js = result.js
    console.print(
        f"JS mean {js.mean():.4f}, p50 {js.median():.4f}, max {js.max():.4f} (ln 2 = 0.6931); "
        f"{(js < 1e-3).float().mean():.0%} of tokens below 1e-3, {(js > 0.1).float().mean():.0%} above 0.1; "
        f"top-1 agreement {result.top1_agree.float().mean():.0%}"
    )
