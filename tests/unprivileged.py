"""Run part of a test as an unprivileged user (permission tests; root ignores chmod).

The child is a fork of the test process that drops to ``nobody`` (65534) before it
runs the function, so every module the function needs must be imported beforehand
(the interpreter's own files may not be readable by that user). Its result comes back
pickled over a pipe.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

NOBODY = 65534


def as_unprivileged(function: Callable[[], Any]) -> Any:
    """``function()`` run as user and group 65534 when this process is root, else as is."""
    if os.geteuid() != 0:
        return function()
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the test runner
        os.close(reading)
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            payload = pickle.dumps(("ok", function()))
        except BaseException as exc:  # reported to the parent
            payload = pickle.dumps(("error", f"{type(exc).__name__}: {exc}"))
        with os.fdopen(writing, "wb") as out:
            out.write(payload)
        os._exit(0)
    os.close(writing)
    with os.fdopen(reading, "rb") as into:
        data = into.read()
    os.waitpid(pid, 0)
    status, value = pickle.loads(data)  # our own child's data
    if status != "ok":
        raise AssertionError(f"in the unprivileged process: {value}")
    return value


@contextmanager
def shared_folder() -> Iterator[Path]:
    """A folder under /tmp that the unprivileged user can reach (pytest's tmp_path sits
    under a folder only root may enter); removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="lambdascope-perm-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for root, dirs, _files in os.walk(path):
            for name in dirs:
                Path(root, name).chmod(0o755)
        path.chmod(0o755)
        shutil.rmtree(path, ignore_errors=True)
