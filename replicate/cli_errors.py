"""Expected failures of the command-line tools (`replicate.errors`, bad input): a one-line
message on stderr, never a traceback.

Bad input (an unknown dataset or variant, an empty or corrupt image folder, weights that cannot be
fetched offline, a missing, corrupt or wrong-kind checkpoint, a bad option) exits with status 2, as
argparse does for a bad option; a diverged run exits with 1. An interrupted one exits with the
shell's code for the signal: 130 for Ctrl-C (SIGINT), 143 for SIGTERM, which `run_cli` turns into
the same `KeyboardInterrupt` so that both stop a run alike (its last checkpoint kept).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import NoReturn

from replicate.errors import DivergedError
from vit.pretrained import WeightsUnavailableError


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's or `kill`'s stop), raised where the program is, as Ctrl-C is."""


BAD_INPUT = (ValueError, WeightsUnavailableError, FileNotFoundError)


def run_cli(prog: str, main: Callable[[Sequence[str] | None], object], argv=None) -> int:
    """Run `main(argv)` and turn expected failures into an exit status with a one-line message."""
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if on_main_thread else None
    try:
        main(argv)
    except BAD_INPUT as error:
        return _fail(prog, error, status=2)
    except DivergedError as error:
        return _fail(prog, error, status=1)
    except KeyboardInterrupt as error:
        signum = signal.SIGTERM if isinstance(error, Terminated) else signal.SIGINT
        return _fail(prog, str(error) or "interrupted", status=128 + signum)
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    return 0


def _terminate(signum: int, frame: object) -> NoReturn:
    raise Terminated


def _fail(prog: str, error: Exception | str, status: int) -> int:
    print(f"{prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
    return status


class ArgumentParser(argparse.ArgumentParser):
    """argparse without abbreviations (`--model` is not short for `--model-arg`), and with a
    usage error on one line, exit status 2, like every other bad input."""

    def __init__(self, **kwargs) -> None:
        super().__init__(allow_abbrev=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(text: str) -> int:
    return _at_least(int(text), 1)


def non_negative_int(text: str) -> int:
    return _at_least(int(text), 0)


def non_negative_float(text: str) -> float:
    return _at_least(float(text), 0)


def _at_least(value, low):
    if not value >= low:  # NaN too
        raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
    return value
