"""A progress bar on stderr, no dependencies.

On a terminal it redraws one line (at most five times a second); otherwise (a log, a test
capturing stderr) it prints a line every ``LOG_EVERY`` seconds and at the end of a phase.
"""
import sys
import threading
import time

LOG_EVERY = 15.0
WIDTH = 28


def _clock(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    def __init__(self, label, total, stats, stream=None, enabled=True):
        self.label = label
        self.total = max(0, total)
        self.stats = stats
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.done = 0
        self.failed = 0
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.requests_at_start = stats.requests
        self.last_draw = 0.0
        self.last_log = self.started

    def update(self, n=1, failed=False):
        with self.lock:
            self.done += n
            if failed:
                self.failed += 1
            now = time.monotonic()
            if self.tty and now - self.last_draw >= 0.2:
                self.last_draw = now
                self._draw(now, end="\r")
            elif self.enabled and not self.tty and now - self.last_log >= LOG_EVERY:
                self.last_log = now
                self._draw(now, end="\n")

    def _line(self, now):
        elapsed = now - self.started
        share = self.done / self.total if self.total else 1.0
        filled = int(WIDTH * min(1.0, share))
        bar = "#" * filled + "." * (WIDTH - filled)
        requests = self.stats.requests - self.requests_at_start
        rate = requests / elapsed if elapsed > 0 else 0.0
        eta = (elapsed / self.done * (self.total - self.done)) if self.done and share < 1 else 0
        failed = f"  {self.failed} failed" if self.failed else ""
        return (f"{self.label:<22} [{bar}] {self.done:>7,}/{self.total:<7,} {share:4.0%}  "
                f"{rate:5.0f} req/s  {_clock(elapsed)} elapsed"
                + (f", {_clock(eta)} left" if eta else "") + failed)

    def _draw(self, now, end):
        self.stream.write(self._line(now) + ("\x1b[K" if self.tty else "") + end)
        self.stream.flush()

    def close(self):
        if self.enabled:
            with self.lock:
                self._draw(time.monotonic(), end="\n")
