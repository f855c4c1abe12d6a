"""The pages a user reads: their marked commands run as written, their links lead somewhere, the README stays short.

A fenced ``bash`` block right after a ``<!-- test -->`` line is run here, a line at a time, in a temporary folder
holding the repository's ``configs/`` and a local ``data/`` folder of tiny generated datasets in the real formats.
Every ``cnnbench`` command runs in process (``cnnbench.cli.main``, what the console script calls) with TINY's
settings added, so a page's commands take seconds. Unmarked blocks (a GPU, a cluster, a database, the network) are
not run.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

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


def commands(block: str) -> Iterator[tuple[str, dict[str, str], list[str]]]:
    """(line, environment, cnnbench arguments) of each command, ``A && B`` being two."""
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            command, words = words[:cut], words[cut + 1 :]
            env = {}
            while command and re.fullmatch(r"[A-Z_]+=\S*", command[0]):
                key, value = command.pop(0).split("=", 1)
                env[key] = value
            assert command[:1] == ["cnnbench"], f"a tested block runs cnnbench commands only: {line!r}"
            yield line, env, command[1:]


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


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_marked_commands_run_as_written(page: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = marked_blocks(page.read_text())
    if not blocks:
        pytest.skip(f"{page.name} marks no commands to run")
    for block in blocks:
        for line, env, args in commands(block):
            with monkeypatch.context() as m:
                for key, value in env.items():
                    m.setenv(key, value)
                try:
                    main(args)
                except SystemExit as stop:
                    assert stop.code in (0, None), f"{page.name}: `{line}` exited with {stop.code}"
                finally:
                    if "wandb" in sys.modules and sys.modules["wandb"].run is not None:
                        sys.modules["wandb"].finish()  # as the end of a process would


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
