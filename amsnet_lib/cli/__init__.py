"""Command line: ``amsnet features | train | compare | fit | pretrain | search`` (:mod:`.train`) and
``amsnet predict | evaluate | stream | export`` (:mod:`.serve`)."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the `amsnet` command: restart with the allocator settings training needs
        from .._runtime import reexec_with_allocator_settings

        reexec_with_allocator_settings("amsnet_lib.cli", sys.argv[1:])
    parser = argparse.ArgumentParser(prog="amsnet", description="AMSNet speech emotion recognition")
    sub = parser.add_subparsers(dest="command", required=True)
    from .serve import _add_inference_commands
    from .train import _add_training_commands

    _add_training_commands(sub)
    _add_inference_commands(sub)

    args = parser.parse_args(argv)
    from ..errors import AmsnetError

    try:
        return args.func(args)
    except AmsnetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
