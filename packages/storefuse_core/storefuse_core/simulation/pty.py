"""Pseudo-terminals that stand in for the store's serial devices.

The driver opens the slave side by path with pyserial, exactly as it would open /dev/ttyUSB0; the
simulator writes frames into the master side. Like a device's transmit FIFO, bytes the kernel
cannot take yet wait here (never a half frame on the line); past `backlog` bytes whole frames are
dropped, the way a UART with no reader loses them (counted), instead of blocking the simulator.
"""
from __future__ import annotations

import errno
import os
import tty
from pathlib import Path


class PtyDevice:
    def __init__(self, device_id: str, dev_dir: Path, backlog: int = 1 << 20):
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
        self.backlog = backlog
        self.pending = bytearray()

    def write(self, frame: bytes) -> None:
        if len(self.pending) + len(frame) > self.backlog:
            self.dropped += 1
            return
        self.pending += frame
        self.written += 1
        self.flush()

    def flush(self) -> int:
        """Push what the line takes now; returns the bytes still waiting."""
        while self.pending:
            try:
                n = os.write(self.master, self.pending)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EIO):
                    raise
                break
            del self.pending[:n]
        return len(self.pending)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.path.is_symlink():
            self.path.unlink()
