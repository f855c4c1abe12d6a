"""Every dataset file is checked against a known MD5 when first read, so a damaged download never trains silently.

Where the known MD5 comes from, per file:

1. ``checksums.md5`` in the dataset's folder (``md5sum`` format, ``<md5>  <file name>``), when it lists the file: a
   folder of the user's own making in a real format (a subset, a re-encoding, the tests' tiny files) declares its
   checksums there (``md5sum * > checksums.md5``).
2. Otherwise the dataset spec's table of the official files (``DatasetSpec.checksums``): a file with an official
   name must be the official file, byte for byte.
3. A file known to neither is only parsed; the readers turn a truncated or malformed file into the same one-line
   error (``damaged_file``).

An MD5 once computed is cached per file under the user's cache folder (``CNNBENCH_CACHE_DIR``, else
``$XDG_CACHE_HOME/cnnbench`` or ``~/.cache/cnnbench``), keyed by the file's path, size, inode, mtime and ctime, so later
runs read nothing twice. The data folder itself may be read-only and is never written; without a writable cache the
check simply runs each time (about a second for CIFAR-10).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from cnnbench.errors import CnnbenchError

MANIFEST = "checksums.md5"
_CACHE_FILE = "dataset-md5.json"


class DamagedDatasetFileError(CnnbenchError):
    """A dataset file is truncated, malformed or differs from its known checksum."""


def remedy(path: Path) -> str:
    return (f"delete it and run again with --data.download true to fetch it anew, "
            f"or point --data.data_dir at a good copy of {path.parent.name}/")  # fmt: skip


@contextmanager
def damaged_file(path: Path) -> Iterator[None]:
    """Turn a reader's failure on ``path`` (truncated, not the expected format) into one line naming the file."""
    try:
        yield
    except DamagedDatasetFileError:
        raise
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError, pickle.UnpicklingError, zlib.error) as exc:
        # truncated pickles and gzip streams, a buffer shorter than its header says, a dict without the expected key
        raise DamagedDatasetFileError(f"{path} cannot be read ({type(exc).__name__}: {exc}): {remedy(path)}") from exc


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(folder: Path) -> dict[str, str]:
    """The file name -> MD5 entries of ``folder/checksums.md5``, none if there is no such file."""
    path = folder / MANIFEST
    if not path.exists():
        return {}
    entries = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        md5, _, name = line.partition(" ")
        name = name.strip().lstrip("*")  # md5sum's binary-mode marker
        if len(md5) != 32 or not name or any(c not in "0123456789abcdefABCDEF" for c in md5):
            raise DamagedDatasetFileError(f"{path}:{number}: not an '<md5>  <file name>' line; fix or delete {path}")
        entries[name] = md5.lower()
    return entries


def _cache_path() -> Path:
    if os.environ.get("CNNBENCH_CACHE_DIR"):
        return Path(os.environ["CNNBENCH_CACHE_DIR"]) / _CACHE_FILE
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cnnbench" / _CACHE_FILE


def _stamp(path: Path) -> list[int]:
    # ctime too: a byte changed in place with the mtime set back still changes the ctime (only the kernel sets it).
    st = path.stat()
    return [st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]


def _load_cache(cache: Path) -> dict[str, list]:
    try:
        loaded = json.loads(cache.read_text())
    except (OSError, ValueError):
        return {}  # none yet, unreadable or garbled: the cache only saves time, so start afresh
    return loaded if isinstance(loaded, dict) else {}


def _save_cache(cache: Path, entries: dict[str, list]) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=".dataset-md5-")
        with os.fdopen(fd, "w") as f:
            json.dump(entries, f)
        os.replace(tmp, cache)  # atomic: DDP ranks verifying at once never see half a file
    except OSError:
        pass  # a read-only home or full disk: the next run checks again, nothing is lost


def verify_files(paths: Sequence[Path], official: Mapping[str, str]) -> None:
    """Check each existing file in ``paths`` against its known MD5 (the folder's manifest, else ``official``)."""
    manifests: dict[Path, dict[str, str]] = {}
    cache_path = _cache_path()
    cache: dict[str, list] | None = None
    changed = False
    for path in paths:
        if not path.exists():
            continue
        manifest = manifests.setdefault(path.parent, read_manifest(path.parent))
        source = f"as listed in {path.parent / MANIFEST}" if path.name in manifest else "the official file's"
        expected = manifest.get(path.name) or official.get(path.name)
        if expected is None:
            continue  # a file of the user's own without a checksum: the reader's parse checks alone
        if cache is None:
            cache = _load_cache(cache_path)
        key, stamp = str(path.resolve()), _stamp(path)
        entry = cache.get(key)
        if isinstance(entry, list) and entry[:-1] == stamp:
            actual = entry[-1]
        else:
            actual = md5_of(path)
            cache[key] = [*stamp, actual]
            changed = True
        if actual != expected:
            raise DamagedDatasetFileError(
                f"{path} is damaged or not the expected file (MD5 {actual}, expected {expected}, {source}): "
                f"{remedy(path)}"
            )
    if changed and cache is not None:
        _save_cache(cache_path, cache)
