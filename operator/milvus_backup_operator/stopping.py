"""Stopping a process that talks to Milvus without cutting a call off.

A client that goes away mid-call can crash Milvus 2.3 and early 2.4 (``engine.milvus_calls``
says why). The entry points therefore stop through ``MILVUS_CALLS``: on SIGTERM (a Pod evicted
or deleted, a Job past its deadline, ``kill``), SIGINT (Ctrl-C) or SIGHUP (a closed terminal)
nothing new is sent to Milvus, the calls in flight get their answers (``STOP_GRACE`` bounds the
wait) and the process exits with 128 + the signal's number.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .engine.milvus_calls import MILVUS_CALLS

STOP_GRACE = 20.0  # s: inside Kubernetes' default terminationGracePeriodSeconds (30)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

log = logging.getLogger(__name__)


def exit_once_answered(code: int, why: str = "") -> None:
    """Send Milvus nothing new, wait (bounded) for the calls in flight, then exit with ``code``;
    ``why`` (a signal's name) is said in any case, else only when calls are in flight."""
    if why or MILVUS_CALLS.in_flight:
        log.warning("%s: stopping once the calls to Milvus in flight have their answers",
                    why or "stopping")  # fmt: skip
    if not MILVUS_CALLS.close(STOP_GRACE):
        log.warning("%d call(s) to Milvus still in flight after %gs: exiting anyway",
                    MILVUS_CALLS.in_flight, STOP_GRACE)  # fmt: skip
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    logging.shutdown()
    os._exit(code)


@contextmanager
def stop_gently() -> Iterator[None]:
    """Within this block, a stop signal ends the process through ``exit_once_answered``.

    The handler only wakes a thread started beforehand: a signal handler that started a thread
    itself could wait on a lock the interrupted main thread holds.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    wake = threading.Event()

    def stop() -> None:
        wake.wait()
        if received:  # else the block ended and nothing was asked
            exit_once_answered(128 + received[0], signal.Signals(received[0]).name)

    def handle(signum: int, _frame: object) -> None:
        received.append(signum)
        wake.set()

    waiter = threading.Thread(target=stop, name="stop", daemon=True)
    waiter.start()
    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        if not received:
            wake.set()
