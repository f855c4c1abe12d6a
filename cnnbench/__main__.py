"""The ``cnnbench`` command (console script and ``python -m cnnbench``): every subcommand, and how bad input ends."""

from __future__ import annotations

import sys

from lightning.pytorch.cli import ArgsType
from lightning.pytorch.utilities.exceptions import SIGTERMException

from cnnbench import lightning_errors
from cnnbench.cli import CnnbenchCLI
from cnnbench.errors import user_error


def main(args: ArgsType = None) -> None:
    """Console entry point: bad input ends with one line on stderr and exit status 2."""
    from cnnbench.console import quiet_output
    from cnnbench.subcommands import COMMANDS as commands  # models, export, report, sweep, lr_find, --version

    quiet_output(argv := sys.argv[1:] if args is None else args)  # before Lightning's first message
    try:
        if isinstance(argv, list) and argv[:1] and argv[0] in commands:
            commands[argv[0]](argv[1:])
        else:
            CnnbenchCLI(args=args)
    except SIGTERMException:
        # Lightning stopped after a batch; LatestCheckpoint saved it. 128 + 15: the shell's code for SIGTERM.
        print("cnnbench: stopped by SIGTERM", file=sys.stderr)
        raise SystemExit(143) from None
    except Exception as exc:
        err = user_error(exc) or lightning_errors.explain(exc)
        if err is None:
            raise
        print(f"cnnbench: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
