"""A serial line reader that survives a store: reopens a lost or missing port with backoff.

Runs pyserial in a thread and hands complete lines to the node through a queue, so the node's
executor never blocks on I/O. Counts everything the diagnostics report.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import serial


@dataclass
class PortStats:
    connected: bool = False
    opens: int = 0
    open_failures: int = 0
    lines: int = 0
    overlong: int = 0
    last_error: str = ""
    last_line_monotonic: float = 0.0


class LinePort:
    def __init__(self, url: str, baudrate: int = 115200, backoff_s: tuple[float, float] = (0.1, 5.0),
                 max_line: int = 4096):
        self.url, self.baudrate = url, baudrate
        self.backoff_min, self.backoff_max = backoff_s
        self.max_line = max_line
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.stats = PortStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"port:{url}", daemon=True)

    def start(self) -> "LinePort":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def drain(self, limit: int = 100_000) -> list[bytes]:
        out = []
        try:
            while len(out) < limit:
                out.append(self.lines.get_nowait())
        except queue.Empty:
            pass
        return out

    def _run(self) -> None:
        backoff = self.backoff_min
        while not self._stop.is_set():
            try:
                port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.1)
            except (serial.SerialException, OSError, ValueError) as exc:
                self.stats.open_failures += 1
                self.stats.last_error = f"cannot open {self.url}: {exc}"
                self._stop.wait(backoff)
                backoff = min(self.backoff_max, backoff * 2)
                continue
            backoff = self.backoff_min
            self.stats.opens += 1
            self.stats.connected = True
            try:
                self._read(port)
            except (serial.SerialException, OSError) as exc:
                self.stats.last_error = f"lost {self.url}: {exc}"
            finally:
                self.stats.connected = False
                try:
                    port.close()
                except (serial.SerialException, OSError):
                    pass

    def _read(self, port) -> None:
        buf = b""
        while not self._stop.is_set():
            chunk = port.read(max(1, port.in_waiting or 1))
            if not chunk:
                continue
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self.stats.lines += 1
                self.stats.last_line_monotonic = time.monotonic()
                self.lines.put(line)
            if len(buf) > self.max_line:
                self.stats.overlong += 1
                self.lines.put(buf)          # handed on so the parser counts it as a bad frame
                buf = b""
