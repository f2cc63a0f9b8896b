"""A process told to stop lets the calls to Milvus in flight be answered, sends none after,
and exits with 128 + the signal (in a child process: the handlers are process-wide)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from milvus_backup_operator.engine.milvus_calls import MILVUS_CALLS
    from milvus_backup_operator.stopping import stop_gently

    def slow_call():
        with MILVUS_CALLS.call():
            print("sent", flush=True)
            time.sleep(1.5)
            print("answered", flush=True)

    with stop_gently():
        threading.Thread(target=slow_call).start()
        while MILVUS_CALLS.in_flight == 0:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIG{name})
        time.sleep(0.2)
        with MILVUS_CALLS.call():
            print("a new call went out", flush=True)
    print("finished as if nothing happened", flush=True)
    """
)


@pytest.mark.parametrize("name", ["TERM", "INT", "HUP"])
def test_a_stop_signal_waits_for_the_answer_and_sends_nothing_new(name: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-c", CHILD.replace("{name}", name)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert done.returncode == 128 + signal.Signals[f"SIG{name}"], done
    assert done.stdout.split() == ["sent", "answered"], done
    assert f"SIG{name}: stopping once the calls to Milvus in flight" in done.stderr


def test_outside_the_block_the_signals_are_as_they_were() -> None:
    from milvus_backup_operator.stopping import STOP_SIGNALS, stop_gently

    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    with stop_gently():
        assert all(signal.getsignal(sig) != before[sig] for sig in STOP_SIGNALS)
    assert {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} == before
