"""Read a small text file the configuration names, refusing what could hang or exhaust memory.

    path ─► stat: not a regular file (a FIFO, /dev/zero, a directory)? OSError, never opened
         ─► read at most `max_bytes` + 1: more? OSError "larger than ..."

Callers already turn an `OSError` into a problem with its `strerror`; these read the same way.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

MAX_CONFIG_BYTES = 4 * 1024 * 1024  # a config file; 90,000 agent ids fit
MAX_TOKEN_BYTES = 64 * 1024  # a token file


def read_text(path: str | Path, max_bytes: int) -> str:
    """Return the UTF-8 text of the regular file at `path`, at most `max_bytes` long.

    Raises OSError (with a `strerror` fit for a message) or UnicodeError.
    """
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise OSError(errno.EINVAL, "not a regular file")
    with open(path, "rb") as file:
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise OSError(errno.EFBIG, f"larger than {max_bytes} bytes")
    return data.decode("utf-8")
