"""Who holds a SQLite store's write lock: so "the store is locked" can name the process to wait for.

SQLite in WAL mode takes its writer lock as a POSIX byte lock on byte 120 of the `-shm` file
(WAL_WRITE_LOCK); Linux lists every such lock, with the owner's pid, in /proc/locks. Elsewhere, or when
the lock has gone by the time we look, the answer is None and the caller says "another process".
"""

from __future__ import annotations

import os
from pathlib import Path

_WAL_WRITE_LOCK_BYTE = 120  # sqlite's UNIX_SHM_BASE: (22 + SQLITE_SHM_NLOCK) * 4
_PROC_LOCKS = Path("/proc/locks")


def write_lock_holder(database: Path) -> int | None:
    """The pid of another process holding the write lock of the SQLite file `database`, if one can be seen."""
    try:
        shm = os.stat(f"{database}-shm")
        table = _PROC_LOCKS.read_text()
    except OSError:
        return None
    return lock_owner(table, shm.st_dev, shm.st_ino, _WAL_WRITE_LOCK_BYTE, exclude=os.getpid())


def lock_owner(table: str, device: int, inode: int, byte: int, exclude: int) -> int | None:
    """The pid holding a POSIX write lock over `byte` of file (device, inode) in a /proc/locks text."""
    wanted = (os.major(device), os.minor(device), inode)
    for line in table.splitlines():
        fields = line.split()
        # "1: POSIX  ADVISORY  WRITE 4242 08:01:393224 120 120"; waiters are marked "->" and skipped
        if len(fields) != 8 or fields[1] != "POSIX" or fields[3] != "WRITE":
            continue
        try:
            pid = int(fields[4])
            major, minor, ino = fields[5].split(":")
            same_file = (int(major, 16), int(minor, 16), int(ino)) == wanted
            start, end = int(fields[6]), fields[7]
            covers = start <= byte and (end == "EOF" or int(end) >= byte)
        except ValueError:
            continue
        if same_file and covers and pid != exclude:
            return pid
    return None


def describe(pid: int) -> str:
    """'pid 4242 (papersift ingest big.jsonl)': the command line, shortened, when it can be read."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"pid {pid}"
    parts = [a.decode(errors="replace") for a in argv if a]
    if parts:
        parts[0] = Path(parts[0]).name  # "python3", not "/usr/local/bin/python3"
    command = " ".join(" ".join(parts).split())  # a `python -c` script spans lines
    if len(command) > 100:
        command = command[:99] + "…"
    return f"pid {pid} ({command})" if command else f"pid {pid}"
