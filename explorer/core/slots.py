"""A few slots for heavy work, shared by every session of one server process.

Training runs and big forward passes take seconds of CPU. On a server for a class, one
student's long job must not starve the others' clicks, so at most ``Limits.heavy_slots``
heavy jobs run at once; the others wait in line and are told so.

Example::

    with heavy(limits, on_wait=lambda ahead: print(f"queued behind {ahead}")):
        train(...)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from explorer.core.errors import ExplorerError
from explorer.core.limits import DEFAULT_LIMITS, Limits

__all__ = ["heavy", "busy", "notices"]

_lock = threading.Lock()
_running = 0
_waiting = 0
_free = threading.Condition(_lock)
_notice: ContextVar[Callable[[int], None] | None] = ContextVar("heavy_notice", default=None)


@contextmanager
def notices(on_wait: Callable[[int], None]) -> Iterator[None]:
    """Within the block, a ``heavy`` job of this thread that waits calls ``on_wait(ahead)``.

    The app wraps each action in it, so a student is told that their job is queued even
    when the code that takes the slot (a big forward pass) passes no callback itself.
    """
    token = _notice.set(on_wait)
    try:
        yield
    finally:
        _notice.reset(token)


def busy() -> tuple[int, int]:
    """(jobs running, jobs waiting) right now in this process."""
    with _lock:
        return _running, _waiting


@contextmanager
def heavy(
    limits: Limits = DEFAULT_LIMITS,
    on_wait: Callable[[int], None] | None = None,
    timeout: float = 120.0,
) -> Iterator[None]:
    """Run the block in one of the process's heavy-work slots, waiting in line if all are taken.

    ``on_wait(ahead)`` is called once, before waiting, with the number of jobs ahead (by
    default the callback of the enclosing ``notices`` block). After ``timeout`` seconds in
    line an ``ExplorerError`` says the server is busy.
    """
    global _running, _waiting
    on_wait = on_wait or _notice.get()
    with _lock:
        if _running >= limits.heavy_slots:
            _waiting += 1
            ahead = _running + _waiting - limits.heavy_slots
            if on_wait is not None:
                _lock.release()
                try:
                    on_wait(ahead)
                finally:
                    _lock.acquire()
            try:
                if not _free.wait_for(lambda: _running < limits.heavy_slots, timeout):
                    raise ExplorerError(
                        f"the server is busy with {_running} long jobs; try again in a minute"
                    )
            finally:
                _waiting -= 1
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            _free.notify()
