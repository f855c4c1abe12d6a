"""The pages a user reads: their marked commands run as written, their links lead somewhere, the README stays short.

A fenced ``bash`` block right after a ``<!-- test -->`` line runs here in bash, as written, in a temporary folder
holding the repository's ``configs/`` and a local ``data/`` folder of tiny generated datasets in the real formats.
Every ``cnnbench`` command in it runs in this process (``cnnbench.__main__.main``, what the console script calls) with
TINY's settings added, so a page's commands take seconds. Unmarked blocks (a GPU, a cluster, a database, the
network) are not run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
import torch

from cnnbench.cli import CnnbenchCLI
from tests.helpers.datasets import write_cifar10, write_cifar100, write_fashion_mnist, write_mnist
from tests.helpers.runs import main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARK = "<!-- test -->"
TEST_COMMAND = ".venv/bin/python -m pytest -q"  # the README's, which .ci/run runs

# Tiny settings for every fit, test, predict and sweep trial: the tiny datasets hold 100 train images. A command
# that names one of these options keeps its own value; only the epochs shrink: 1, or 2 where the command asks for a
# number of epochs (a longer run, at this scale).
TINY = {
    "--data.val_size": "20",
    "--data.batch_size": "16",
    "--data.num_workers": "0",
    "--data.download": "false",
    "--trainer.accelerator": "cpu",
    "--trainer.enable_progress_bar": "false",
    "--trainer.enable_model_summary": "false",
    "--trainer.log_every_n_steps": "1",
}
EPOCHS = "--trainer.max_epochs"


def names(args: list[str], option: str) -> bool:
    return any(a == option or a.startswith(f"{option}=") for a in args)


def tiny(args: list[str]) -> list[str]:
    added = [f"{key}={value}" for key, value in TINY.items() if not names(args, key)]
    return [*args, *added, f"{EPOCHS}={2 if names(args, EPOCHS) else 1}"]


def marked_blocks(text: str) -> list[str]:
    """The bodies of the ``bash`` blocks marked to run."""
    return re.findall(rf"^{re.escape(MARK)}\n```bash\n(.*?)^```", text, flags=re.M | re.S)


# Each marked block runs in bash as written (variables, loops, globs, ``&&``), where ``cnnbench`` is a function that
# hands its arguments and its WANDB_*/CNNBENCH_* environment to this process, which runs the command and answers
# with its exit status. PATH leads nowhere, so a marked block runs cnnbench and shell builtins only; any other
# command stops the whole block (even left of ``&&``, where ``set -e`` would let it pass).
SHELL_CNNBENCH = r"""
command_not_found_handle() {
  echo "$1: a marked block runs cnnbench commands and shell builtins only" >&2
  kill -TERM $$
}
cnnbench() {
  local names=(${!WANDB_*} ${!CNNBENCH_*}) name code
  printf '%s\0' "$#" "${#names[@]}" "$@" >&"$DOCS_REQUESTS"
  for name in "${names[@]}"; do printf '%s\0' "$name=${!name}" >&"$DOCS_REQUESTS"; done
  read -r code <&"$DOCS_REPLIES"
  return "$code"
}
"""


def fields(stream: BinaryIO) -> Iterator[str]:
    """The NUL-terminated fields the shell writes, until it exits."""
    field = b""
    while byte := stream.read(1):
        if byte == b"\0":
            yield field.decode()
            field = b""
        else:
            field += byte


def run_in_process(args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> int:
    """``cnnbench ARGS`` as the console script runs it, in this process: its exit status."""
    with monkeypatch.context() as m:
        for key, value in env.items():
            m.setenv(key, value)
        try:
            main(args)
        except SystemExit as stop:
            return stop.code if isinstance(stop.code, int) else 1
        finally:
            if "wandb" in sys.modules and sys.modules["wandb"].run is not None:
                sys.modules["wandb"].finish()  # as the end of a process would
    return 0


def run_block(block: str, where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    requests_r, requests_w = os.pipe()
    replies_r, replies_w = os.pipe()
    env = {**os.environ, "PATH": "/nonexistent", "DOCS_REQUESTS": str(requests_w), "DOCS_REPLIES": str(replies_r)}
    bash = [shutil.which("bash") or "/bin/bash", "-ec", SHELL_CNNBENCH + block]
    shell = subprocess.Popen(bash, env=env, pass_fds=(requests_w, replies_r), stdin=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    os.close(requests_w)
    os.close(replies_r)
    with os.fdopen(requests_r, "rb") as requests, os.fdopen(replies_w, "w") as replies:
        try:
            stream = fields(requests)
            for count in stream:
                n_env = int(next(stream))
                args = [next(stream) for _ in range(int(count))]
                env = dict(next(stream).split("=", 1) for _ in range(n_env))
                code = run_in_process(args, env, monkeypatch)
                assert code == 0, f"{where}: `cnnbench {shlex.join(args)}` exited with {code}"
                replies.write("0\n")
                replies.flush()
        except BaseException:
            shell.kill()  # it waits for a reply that will not come
            raise
        finally:
            _, errors = shell.communicate()
    assert shell.returncode == 0, f"{where}: the block failed in bash: {errors.strip()}"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A user's folder: the repository's configs and a ``data/`` folder with every dataset, in tiny."""
    for write in (write_cifar10, write_cifar100, write_fashion_mnist, write_mnist):
        write(tmp_path / "data")
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    monkeypatch.chdir(tmp_path)
    parse = CnnbenchCLI.parse_arguments  # whichever class defines it: the sweep's trial CLIs inherit the patch

    def parse_tiny(self: CnnbenchCLI, parser: object, args: object) -> None:
        parse(self, parser, tiny(args) if isinstance(args, list) else args)

    monkeypatch.setattr(CnnbenchCLI, "parse_arguments", parse_tiny)
    # One thread: a second one gains nothing on batches of 16 and, on a busy machine, triples the CPU time.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path
    torch.set_num_threads(threads)


RUN_PAGES = [page for page in PAGES if marked_blocks(page.read_text())]


@pytest.mark.parametrize("page", RUN_PAGES, ids=[p.name for p in RUN_PAGES])
def test_marked_commands_run_as_written(page: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for block in marked_blocks(page.read_text()):
        run_block(block, page.name, monkeypatch)


def test_every_page_with_commands_marks_some() -> None:
    """The marker is spelled as the test reads it: a page whose marked blocks are all missed would pass silently."""
    for page in PAGES:
        text = page.read_text()
        marks = re.findall(rf"^{re.escape(MARK)}$", text, flags=re.M)
        assert len(marks) == len(marked_blocks(text)), f"{page.name}: a {MARK} line not right before ```bash"
    assert marked_blocks((ROOT / "README.md").read_text())


def links(text: str) -> list[str]:
    """Targets of Markdown links and images, outside code blocks and spans."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text)


def anchors(text: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    titles = re.findall(r"^#+ (.+)$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", t.strip().lower()).replace(" ", "-") for t in titles}


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_relative_links_lead_to_files_and_headings(page: Path) -> None:
    text = page.read_text()
    for target in links(text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor and file.suffix == ".md":
            assert anchor in anchors(file.read_text()), f"{page.name} links to {target}: no such heading"


def test_readme_is_short_and_names_the_ci_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert f"\n{TEST_COMMAND}\n" in readme
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text().splitlines()


def test_examples_use_a_local_data_folder() -> None:
    for page in PAGES:
        assert "../shared" not in page.read_text(), f"{page.name} points at the project's own data copy"
