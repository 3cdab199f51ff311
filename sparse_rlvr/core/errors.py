"""User errors: one exception type, and the one place that prints it as `error: <problem>; <fix>` with exit status 2.

A mistake in what the user gave (a missing file, a misspelt option, a column that is not
there) raises `UserError` with a message naming the offending value and what to do instead.
The console entry point (`run_reporting_user_errors`, used by `sparse_rlvr.cli.app`) prints that
message to stderr with no traceback and exits 2, as a usage error. Everything else (a bug, a
crash inside verl or a worker) keeps its traceback and its non-2 status. `--debug` on the root
command, or SPARSE_RLVR_DEBUG=1, shows the traceback of user errors too.
"""

from __future__ import annotations

import difflib
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

DEBUG_ENV = "SPARSE_RLVR_DEBUG"
"""Set to 1 (or pass `sparse-rlvr --debug`) to see the traceback behind an `error: ...` line."""
USAGE_ERROR_STATUS = 2


class UserError(ValueError):
    """Bad input from the user: the message says what is wrong, with the offending value, and how to fix it.

    A ValueError, so library callers that catch ValueError keep working.
    """

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class MissingFileError(UserError, FileNotFoundError):
    """A file or directory the user named does not exist."""


class MissingColumnError(UserError, KeyError):
    """A table has no column of the name the user gave (KeyError for callers that catch that)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


def debug_enabled() -> bool:
    """Whether user errors show their traceback (`--debug` sets the environment variable)."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def report(error: UserError) -> NoReturn:
    """Print `error: <message>` to stderr and exit with the usage-error status."""
    print(f"error: {error.message}", file=sys.stderr, flush=True)
    raise SystemExit(USAGE_ERROR_STATUS)


def run_reporting_user_errors(main: Callable[[], Any]) -> Any:
    """Call `main()`; a UserError becomes one `error: ...` line and exit 2 (after its traceback with debug on)."""
    try:
        return main()
    except UserError as error:
        if debug_enabled():
            traceback.print_exc()
        report(error)


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most like `word` (difflib), or None when none is close."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """'; did you mean X?' when a choice is close to `word`, else ''."""
    match = closest(word, choices)
    return f"; did you mean {match!r}?" if match else ""


@contextmanager
def kept_on_failure(out_dir: str | Path, finished: Callable[[], int]) -> Iterator[None]:
    """Say, on any failure inside, that the finished shards stay in `out_dir` and how to resume.

    A UserError gets the sentence appended to its one line; anything else keeps its traceback
    and gets the sentence as a note under it.
    """
    try:
        yield
    except UserError as error:
        raise type(error)(f"{error.message}; {_resume_hint(out_dir, finished())}") from error
    except BaseException as error:
        error.add_note(f"sparse-rlvr: {_resume_hint(out_dir, finished())}")
        raise


def _resume_hint(out_dir: str | Path, finished: int) -> str:
    return (f"{finished} shard(s) finished in this run and every earlier one are kept in {out_dir}: "
            "rerun the same command to resume")


def check_not_all_failed(reasons: Sequence[str], failure: str, why: str) -> None:
    """Refuse a run where every row failed for the same cause (`failure`): that is not an accuracy of 0."""
    if reasons and all(reason == failure for reason in reasons):
        raise UserError(f"every one of the {len(reasons)} rows was graded {failure!r}: {why}")
