"""The ``cnnbench`` command (console script and ``python -m cnnbench``): every subcommand, and how bad input ends."""

from __future__ import annotations

import sys

import torch
from lightning.pytorch.cli import ArgsType
from lightning.pytorch.utilities.exceptions import SIGTERMException

from cnnbench import lightning_errors
from cnnbench.cli import CnnbenchCLI
from cnnbench.errors import user_error


def flush_denormals() -> None:
    """Make the CPU treat float denormals (magnitudes below 1.2e-38) as zero, in this thread and every thread
    started after it.

    x86 CPUs compute with denormals in microcode, many times slower per element. Training makes them: Adam's first
    moment of a weight that gets no gradient (the inputs of a dead ReLU unit) decays by beta1 each step and turns
    denormal after about 800 steps, so a large linear layer's optimizer step slows down epoch after epoch. Values
    that small change no result. Threads copy the setting when they start, so it must come before torch's first
    parallel operation starts its intra-op threads (GPU kernels are not affected).
    """
    torch.set_flush_denormal(True)


def main(args: ArgsType = None) -> None:
    """Console entry point: bad input ends with one line on stderr and exit status 2."""
    flush_denormals()  # first: before any tensor operation starts torch's thread pool
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
