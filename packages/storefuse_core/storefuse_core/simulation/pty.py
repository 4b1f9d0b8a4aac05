"""Pseudo-terminals that stand in for the store's serial devices.

The driver opens the slave side by path with pyserial, exactly as it would open /dev/ttyUSB0; the
simulator writes frames into the master side. A full line buffer drops frames the way a UART with
no reader does (counted), instead of blocking the simulator.
"""
from __future__ import annotations

import errno
import os
import tty
from pathlib import Path


class PtyDevice:
    def __init__(self, device_id: str, dev_dir: Path):
        self.device_id = device_id
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = Path(dev_dir) / device_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_symlink() or self.path.exists():
            self.path.unlink()
        self.path.symlink_to(os.ttyname(self.slave))
        self.dropped = 0
        self.written = 0

    def write(self, frame: bytes) -> None:
        try:
            n = os.write(self.master, frame)
            self.written += 1
            if n < len(frame):
                self.dropped += 1
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EIO):
                raise
            self.dropped += 1

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.path.is_symlink():
            self.path.unlink()
