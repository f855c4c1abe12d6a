"""GPU correctness check (issue 27): one table of what only a GPU run can show, on a synthetic CIFAR-10.

    python benchmarks/gpu_check.py               # on the GPU: full-size data, < 8 minutes on one card
    python benchmarks/gpu_check.py --device cpu  # the reduced version CI runs (tiny sizes, few steps)

Rows: host syncs per training step (fast.yaml with EMA, 16-mixed and compile; steps 2-10); deterministic fast94 and
a resnet18 resume (N+N steps) equal to 2N straight steps; bf16-true / 16-true for an epoch with the metric states'
dtypes; a compiled fit, then test / predict / export from its checkpoint; a 16-mixed resume keeping the loss scale;
SIGTERM mid-epoch. Rows that need CUDA print "skipped: needs CUDA" on the CPU. Exit status 1 if a row failed.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cnnbench.classifier import ImageClassifier  # noqa: E402
from cnnbench.cli import CnnbenchCLI  # noqa: E402
from cnnbench.data.datamodule import ImageDataModule  # noqa: E402
from cnnbench.export import export_checkpoint  # noqa: E402
from cnnbench.testing.syncs import HostSyncCounter  # noqa: E402
from cnnbench.testing.synthetic import write_cifar10  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "cifar10"


class Check:
    def __init__(self, device: str, data_dir: Path, root: Path) -> None:
        self.device, self.data_dir, self.root = device, data_dir, root
        self.cuda = device == "cuda"
        self.batch = 512 if self.cuda else 16
        self.steps = 30 if self.cuda else 2  # each half of the resume rows

    def args(self, name: str, *extra: str, config: str | None = None) -> list[str]:
        size = [] if self.cuda else ["--data.val_size=16", "--trainer.num_sanity_val_steps=0"]
        return [
            *([f"--config={CONFIGS / config}"] if config else []),
            f"--data.data_dir={self.data_dir}", "--data.download=false", "--data.num_workers=0",
            f"--data.batch_size={self.batch}", f"--trainer.default_root_dir={self.root / name}",
            f"--trainer.accelerator={'gpu' if self.cuda else 'cpu'}", "--trainer.devices=1",
            "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
            "--trainer.log_every_n_steps=50", *size, *extra,
        ]  # fmt: skip

    def fit(self, name: str, *extra: str, config: str | None = None) -> CnnbenchCLI:
        return CnnbenchCLI(args=["fit", *self.args(name, *extra, config=config)])

    def syncs(self) -> str:
        """Host syncs in steps 2-10 (from the batch's transfer hook through the model's on_train_batch_end)."""
        # Step 11 ends the run (its end saves a checkpoint, a sync by design): the windows are steps 2-10.
        extra = ["--model.ema_decay=0.99", "--trainer.max_steps=11"]
        if self.cuda:
            extra += ["--trainer.precision=16-mixed", "--model.compile=true"]
        else:
            extra += ["--trainer.precision=32", "--data.mixup_alpha=0.4"]
        counts: list[int] = []
        window: Any = None
        after, end = ImageDataModule.on_after_batch_transfer, ImageClassifier.on_train_batch_end

        def open_window(data: Any, batch: Any, idx: int) -> Any:
            nonlocal window
            trainer = data.trainer
            if trainer is not None and trainer.training and 1 <= trainer.global_step <= 9:
                if self.cuda:
                    window = warnings.catch_warnings(record=True)
                    window.records = window.__enter__()
                    warnings.simplefilter("always")
                    torch.cuda.set_sync_debug_mode("warn")
                else:
                    window = HostSyncCounter().__enter__()
            return after(data, batch, idx)

        def close_window(model: Any, *args: Any) -> None:
            nonlocal window
            end(model, *args)
            if window is None:
                return
            if self.cuda:
                torch.cuda.synchronize()  # the step's own work, before the mode goes off
                torch.cuda.set_sync_debug_mode("default")
                counts.append(sum("synchroniz" in str(w.message) for w in window.records))
                window.__exit__(None, None, None)
            else:
                window.__exit__(None, None, None)
                counts.append(window.total)
            window = None

        ImageDataModule.on_after_batch_transfer, ImageClassifier.on_train_batch_end = open_window, close_window
        try:
            self.fit("syncs", *extra, config="fast.yaml")
        finally:
            ImageDataModule.on_after_batch_transfer, ImageClassifier.on_train_batch_end = after, end
        assert counts and not any(counts), f"syncs per step: {counts}"
        return f"0 syncs in each of steps 2-{len(counts) + 1}"

    def _resume_equal(self, name: str, config: str | None, *extra: str) -> str:
        n = self.steps
        straight = self.fit(f"{name}-straight", *extra, f"--trainer.max_steps={2 * n}", config=config)
        self.fit(f"{name}-resumed", *extra, f"--trainer.max_steps={n}", config=config)
        resumed = self.fit(f"{name}-resumed", *extra, f"--trainer.max_steps={2 * n}", "--ckpt_path=last", config=config)
        a, b = straight.model.state_dict(), resumed.model.state_dict()
        differ = [k for k in a if not torch.equal(a[k], b[k])]
        assert not differ, f"{len(differ)} tensors differ, first {differ[0]}"
        return f"{n}+{n} steps == {2 * n} straight, bit for bit"

    def fast94_deterministic(self) -> str:
        narrow = [] if self.cuda else ["--model.widths=[16,32,32]"]  # the CPU version: the same pieces, narrower
        # fast94.yaml sizes its schedule by max_steps: two epochs give both halves the straight run's schedule.
        return self._resume_equal("fast94", "fast94.yaml", "--trainer.deterministic=true", "--trainer.max_epochs=2",
                                  *narrow)  # fmt: skip

    def resnet18_resume(self) -> str:
        model = "resnet18" if self.cuda else "simple_cnn"  # the CPU version checks the path, not resnet18's kernels
        return f"{model}: " + self._resume_equal("resnet18", None, f"--model={model}", "--trainer.deterministic=true")

    def true_half(self) -> str:
        shown = []
        for precision in ("bf16-true", "16-true") if self.cuda else ("bf16-true",):
            steps = [] if self.cuda else ["--trainer.max_steps=3"]  # the CPU's bf16 kernels are slow
            cli = self.fit(f"half-{precision}", f"--trainer.precision={precision}", "--trainer.max_epochs=1", *steps,
                           "--model.ema_decay=0.99", config="fast.yaml")  # fmt: skip
            model = cli.model
            states = (model.train_loss.total, model.train_loss.count, model.val_acc_best.max_value)
            dtypes = {str(t.dtype) for t in states}
            loss = float(cli.trainer.callback_metrics["train/loss"])
            assert dtypes == {"torch.float32"} and math.isfinite(loss), (precision, dtypes, loss)
            shown.append(f"{precision}: loss {loss:.3f}, metric states float32")
        return "; ".join(shown)

    def compiled_then_evaluate(self) -> str:
        cli = self.fit("compiled", "--model.compile=true", "--trainer.max_epochs=1", config="fast.yaml")
        last = cli.run_dir / "checkpoints/last.ckpt"
        for command in ("test", "predict"):
            CnnbenchCLI(args=[command, *self.args("compiled", f"--ckpt_path={last}", config="fast.yaml")])
        exported = export_checkpoint(last, self.root / "exported")
        return f"test, predict and export ({len(exported)} files) from the compiled run's checkpoint"

    def loss_scale_resume(self) -> str:
        extra = ("--trainer.precision=16-mixed", "--trainer.max_epochs=100")
        n = self.steps
        self.fit("scale", *extra, f"--trainer.max_steps={n}", config="fast.yaml")
        (run_dir,) = (self.root / "scale/cifar10-fastnet").iterdir()
        saved = torch.load(run_dir / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)["MixedPrecision"]
        resumed = self.fit("scale", *extra, f"--trainer.max_steps={n + 1}", "--ckpt_path=last", config="fast.yaml")
        scale = resumed.trainer.precision_plugin.scaler.get_scale()
        assert scale >= saved["scale"] / 2, (scale, saved["scale"])  # one step may halve it, never reset it
        return f"scale {saved['scale']:.0f} saved, {scale:.0f} after one resumed step"

    def sigterm(self) -> str:
        args = self.args("sigterm", "--trainer.max_epochs=100", config="fast.yaml")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        proc = subprocess.Popen([sys.executable, "-m", "cnnbench", "fit", *args], env=env, stderr=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, text=True)  # fmt: skip
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not list((self.root / "sigterm").glob("*/*/metrics.csv")):
            if proc.poll() is not None:  # the fit ended before training: say why, not wait for a file
                tail = proc.stderr.read()[-2000:]
                raise RuntimeError(f"the fit exited with {proc.returncode} before training: {tail}")
            time.sleep(0.5)
        time.sleep(3 if self.cuda else 5)  # inside an epoch
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=240)
        (last,) = (self.root / "sigterm").glob("*/*/checkpoints/last.ckpt")
        step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
        assert proc.returncode == 143, err[-2000:]
        return f"exit 143, last.ckpt at step {step}"


ROWS: list[tuple[str, str, bool]] = [  # (title, method, needs CUDA)
    ("syncs per step, fast.yaml + EMA (+16-mixed, compile)", "syncs", False),
    ("deterministic fast94, resume == straight", "fast94_deterministic", False),
    ("resnet18 resume == straight (CPU: simple_cnn)", "resnet18_resume", False),
    ("true half precision, metric dtypes", "true_half", False),
    ("compiled fit -> test/predict/export", "compiled_then_evaluate", True),
    ("16-mixed resume keeps the loss scale", "loss_scale_resume", True),
    ("SIGTERM mid-epoch", "sigterm", False),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", nargs="*", help="method names of the rows to run (default: all)")
    options = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    with tempfile.TemporaryDirectory() as tmp:
        data = write_cifar10(Path(tmp) / "data", *((10_000, 10_000) if options.device == "cuda" else (40, 40)))
        check = Check(options.device, data, Path(tmp) / "runs")
        results: list[tuple[str, str, str, float]] = []
        for title, method, needs_cuda in ROWS:
            if options.only and method not in options.only:
                continue
            if needs_cuda and not check.cuda:
                results.append((title, "skipped", "needs CUDA", 0.0))
                continue
            start = time.perf_counter()
            try:
                detail = getattr(check, method)()
                status = "ok"
            except Exception as exc:  # a row's failure is reported in the table; the others still run
                status, detail = "FAILED", f"{type(exc).__name__}: {exc}"[:200]
            results.append((title, status, detail, time.perf_counter() - start))
    device = torch.cuda.get_device_name() if options.device == "cuda" else "cpu"
    print(f"\ncnnbench GPU check on {device} (torch {torch.__version__})")
    print(f"| {'check':<52} | {'status':<7} | {'s':>6} | detail")
    print(f"|{'-' * 54}|{'-' * 9}|{'-' * 8}|{'-' * 40}")
    for title, status, detail, seconds in results:
        shown = f"skipped: {detail}" if status == "skipped" else detail
        print(f"| {title:<52} | {status:<7} | {seconds:6.1f} | {shown}")
    return int(any(status == "FAILED" for _, status, _, _ in results))


if __name__ == "__main__":
    raise SystemExit(main())
