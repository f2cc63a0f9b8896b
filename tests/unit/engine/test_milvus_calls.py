"""The gate a process stops through: no call cut off, none started once it is closed."""

from __future__ import annotations

import threading
import time

from milvus_backup_operator.engine.milvus_calls import CallGate


def test_closing_waits_for_the_call_in_flight_and_holds_back_new_ones() -> None:
    gate = CallGate()
    answered, started_late = threading.Event(), threading.Event()

    def slow_call() -> None:
        with gate.call():
            answered.wait(5)

    def late_call() -> None:
        with gate.call():
            started_late.set()

    in_flight = threading.Thread(target=slow_call)
    in_flight.start()
    while gate.in_flight == 0:
        time.sleep(0.01)
    assert gate.close(0.2) is False  # the call is still waiting for its answer
    threading.Thread(target=late_call, daemon=True).start()
    answered.set()
    in_flight.join(5)
    assert gate.close(1.0) is True
    assert gate.in_flight == 0
    assert not started_late.wait(0.3)  # closed: a new call never goes out


def test_an_open_gate_lets_calls_through_and_counts_them() -> None:
    gate = CallGate()
    with gate.call(), gate.call():
        assert gate.in_flight == 2
    assert gate.in_flight == 0
    assert gate.close(0) is True
