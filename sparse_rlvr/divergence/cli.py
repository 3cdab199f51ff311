"""`sparse-rlvr demo`: the divergence core on a tiny base/policy pair built in code, no downloads."""

from __future__ import annotations

from typing import Annotated

import typer

DEFAULT_TEXT = "Compute 12*7-5. First 12*7=84, then 84-5=79. The answer is \\boxed{79}."


def demo(
    text: Annotated[str, typer.Option(help="Response text to teacher-force through both models.")] = DEFAULT_TEXT,
    shift: Annotated[float, typer.Option(help="How far the policy's weights move from the base (0 = identical).")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the tiny models' weights.")] = 0,
    top: Annotated[int, typer.Option(help="Show this many highest-JS tokens.")] = 10,
) -> None:
    """Compare a tiny base model and a perturbed 'policy' token by token (exact JS, KLs, ranks)."""
    import torch
    from rich.console import Console
    from rich.table import Table

    from sparse_rlvr.divergence import token_divergence
    from sparse_rlvr.tiny import tiny_pair

    base, policy, tokenizer = tiny_pair(seed=seed, shift=shift)
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.no_grad():
        # logits at position t predict token t+1: compare the distributions that chose each token
        result = token_divergence(
            base(ids).logits[0, :-1], policy(ids).logits[0, :-1], vocab_size=len(tokenizer)
        )
    tokens = tokenizer.convert_ids_to_tokens(ids[0, 1:].tolist())
    console = Console()
    table = Table(title=f"Top {top} tokens by JS(base, policy) of {len(tokens)}")
    for column in ("pos", "token", "JS", "KL(b||p)", "H(base)", "top-1 agree", "rank in base"):
        table.add_column(column, justify="right")
    for i in result.js.argsort(descending=True)[:top].tolist():
        table.add_row(
            str(i + 1), repr(tokens[i]), f"{result.js[i]:.4f}", f"{result.kl_base_policy[i]:.4f}",
            f"{result.base_entropy[i]:.3f}", "yes" if result.top1_agree[i] else "no",
            str(int(result.policy_top1_rank_in_base[i])),
        )
    console.print(table)
    js = result.js
    console.print(
        f"JS mean {js.mean():.4f}, p50 {js.median():.4f}, max {js.max():.4f} (ln 2 = 0.6931); "
        f"{(js < 1e-3).float().mean():.0%} of tokens below 1e-3, {(js > 0.1).float().mean():.0%} above 0.1; "
        f"top-1 agreement {result.top1_agree.float().mean():.0%}"
    )
