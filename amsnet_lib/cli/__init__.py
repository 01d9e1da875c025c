"""Command line: ``amsnet features | train | compare | fit | pretrain | search`` (:mod:`.train`) and
``amsnet predict | evaluate | stream | export`` (:mod:`.serve`)."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the `amsnet` command: restart with the allocator settings training needs
        from .._runtime import reexec_with_allocator_settings

        reexec_with_allocator_settings("amsnet_lib.cli", sys.argv[1:])
    args = build_parser().parse_args(argv)
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
