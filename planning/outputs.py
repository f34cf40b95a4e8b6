"""An output folder written all at once: files go to a staging folder beside it and move into place only
when every one is written, so a failed run leaves no half-written folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from planning.errors import ParameterError


def check_output_folder(out: str | os.PathLike) -> Path:
    """``out`` as a Path when it can be an output folder (absent, or a folder); a
    :class:`~planning.errors.ParameterError` when it names an existing file."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"--out 指向已有的文件而不是文件夹：{out}",
                             f"--out names an existing file, not a folder: {out}")
    return out


@contextlib.contextmanager
def staged_folder(out: str | os.PathLike) -> Iterator[Path]:
    """A staging folder to write into; on success its entries replace those of ``out`` (created when
    absent; other files already in ``out`` stay), on any error it is removed and ``out`` is untouched.

    The staging folder (``.<name>.partial-*``) sits in the nearest existing folder above ``out``, on the
    same file system, so the final move is a rename.
    """
    out = check_output_folder(out).absolute()
    anchor = out.parent
    while not anchor.exists():
        anchor = anchor.parent
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=anchor))
    try:
        yield stage
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage, out)
            return
        for entry in stage.iterdir():
            target = out / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def final_path(path: str | os.PathLike, stage: Path, out: str | os.PathLike) -> Path:
    """Where ``path``, written inside ``stage``, lives once moved into ``out``."""
    return Path(out) / Path(path).relative_to(stage)
