"""A process lost with its node, as the servers it was talking to see it.

A node that is lost sends nothing more: its connections stay open until the servers give up on
them, so Milvus finishes serving the calls it had and its answers go nowhere. ``SIGKILL`` alone
is not that: the kernel closes the sockets at once and Milvus sees each call in flight
cancelled, which Milvus 2.3.5's proxy does not survive during an import call
(``engine/milvus_calls.py`` says why; no client can prevent that). So the process is frozen
first, Milvus is given ``SETTLE`` seconds to answer, and then it is killed: a call that Milvus
takes longer than that to answer (a long flush or load) is still cut off.
"""

from __future__ import annotations

import signal
import subprocess
import time

SETTLE = 3.0  # s for Milvus to answer what the frozen process had asked


def lose(process: subprocess.Popen[bytes], settle: float = SETTLE) -> None:
    """Freeze ``process``, let the calls it had in flight be answered, then SIGKILL it."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGSTOP)
    time.sleep(settle)
    process.kill()
    process.wait()
