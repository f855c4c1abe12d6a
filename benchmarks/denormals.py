"""What denormals cost a CPU training step, and what ``cnnbench``'s flush to zero saves.

An Adam step on a 4096 x 4096 linear layer (the size of a classic AlexNet's hidden layers) in which three units
in four are dead: their weights get no gradient, so Adam's first moment of them has decayed by beta1 at every
step since, to about 1e-3 x 0.9^850, a denormal. That state is timed in fresh processes, once with float denormals
flushed to zero as the ``cnnbench`` command sets it, once keeping them (torch's default), alternating
``--repeats`` times; the medians and the ratio are printed, then one JSON line.

    python benchmarks/denormals.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

WIDTH, DEAD_SHARE, DECAYED_STEPS = 4096, 0.75, 850


def time_steps(flush: bool, steps: int) -> float:
    """Median milliseconds of one Adam step, in this process (run it in a fresh one)."""
    import torch

    torch.set_flush_denormal(flush)  # before any parallel op, as the cnnbench command does
    layer = torch.nn.Linear(WIDTH, WIDTH)
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3)
    dead = int(WIDTH * DEAD_SHARE)
    grad = torch.full((WIDTH, WIDTH), 1e-3)
    grad[:dead] = 0.0
    moment = grad.clone()
    moment[:dead] = 1e-3 * 0.9**DECAYED_STEPS  # denormal, or 0 where flushed: what the decay itself would give
    layer.weight.grad, layer.bias.grad = grad, torch.zeros(WIDTH)
    optimizer.step()  # creates the state, then set as after the decay
    optimizer.state[layer.weight]["exp_avg"].copy_(moment)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        optimizer.step()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="Processes per side, alternating.")
    parser.add_argument("--steps", type=int, default=10, help="Adam steps timed per process.")
    parser.add_argument("--child", choices=("flush", "keep"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print(time_steps(options.child == "flush", options.steps))
        return
    results: dict[str, list[float]] = {"flush": [], "keep": []}
    for _ in range(options.repeats):
        for side in ("flush", "keep"):
            child = [sys.executable, __file__, "--child", side, "--steps", str(options.steps)]
            results[side].append(float(subprocess.run(child, capture_output=True, text=True, check=True).stdout))
    medians = {side: statistics.median(times) for side, times in results.items()}
    for side, times in results.items():
        print(f"{side:>5}: {medians[side]:7.1f} ms per Adam step (min {min(times):.1f}, max {max(times):.1f})")
    print(f"keeping denormals costs {medians['keep'] / medians['flush']:.2f}x the step with them flushed")
    print(json.dumps({"flush_ms": medians["flush"], "keep_ms": medians["keep"], "runs": results}))


if __name__ == "__main__":
    main()
