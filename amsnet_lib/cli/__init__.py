"""Command line: ``amsnet features | train | compare | fit | pretrain | search`` (:mod:`.train`) and
``amsnet predict | evaluate | stream | export`` (:mod:`.serve`).

Exit status: 0 done, 1 nothing could be done (e.g. no file predicted), 2 an error (the message
names the file and the fix), 130 interrupted (Ctrl-C: every command stops, and every output is
written whole or not at all), 141 the reader of standard output went away (``| head``).
"""
from __future__ import annotations

import argparse
import os
import sys

#: Exit status of a command stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130
#: Exit status when standard output's reader has gone (128 + SIGPIPE, as for a command killed by it).
EXIT_BROKEN_PIPE = 141


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the `amsnet` command: restart with the allocator settings training needs
        from .._runtime import reexec_with_allocator_settings

        reexec_with_allocator_settings("amsnet_lib.cli", sys.argv[1:])
    try:
        return _run(argv)
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C): stopped; every file is written whole or not at all", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `amsnet predict ... | head -1`: the reader is gone, so stop as quietly as a command killed by
        # SIGPIPE; stdout goes to /dev/null so that the interpreter's last flush cannot fail again
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor
            pass
        return EXIT_BROKEN_PIPE


def _run(argv: list[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error (a value out of range): its status, returned
        return stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 2
    from ..errors import AmsnetError

    try:
        return args.func(args)
    except AmsnetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        extra = _extra_for(args.command, e.name or "")
        if extra is None:
            raise
        print(f"error: amsnet {args.command} needs the {e.name.split('.')[0]} package, which this install leaves out. "
              f"Fix: pip install 'amsnet[{extra}]'" + (_CPU_WHEELS if extra in ("torch", "train") else ""), file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    """The ``amsnet`` parser with every command; ``--help`` shows every option's default."""
    from ._common import DefaultsFormatter
    from .serve import _add_inference_commands
    from .train import _add_training_commands

    parser = argparse.ArgumentParser(prog="amsnet", description="AMSNet speech emotion recognition")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_training_commands(sub)
    _add_inference_commands(sub)
    for p in sub.choices.values():
        p.formatter_class = DefaultsFormatter
    return parser


#: The commands of the training half (``[train]`` extra: torch, Ray, Optuna, scikit-learn).
TRAINING_COMMANDS = ("features", "train", "compare", "fit", "pretrain", "search")
_CPU_WHEELS = " (CPU-only PyTorch: add --extra-index-url https://download.pytorch.org/whl/cpu)"


def _extra_for(command: str, module: str) -> str | None:
    """The extra that brings ``module`` for ``command``; None for a module no extra brings."""
    root = module.split(".")[0]
    if root in ("matplotlib", "seaborn"):
        return "notebooks"
    if root in ("torch", "ray", "optuna", "sklearn"):
        return "train" if command in TRAINING_COMMANDS else "torch"
    if root in ("onnx", "onnxscript"):
        return "torch"
    return None
