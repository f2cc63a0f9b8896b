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


def test_a_together_block_finishes_its_calls_after_the_gate_closes() -> None:
    gate = CallGate()
    closing, second_sent, closed = threading.Event(), threading.Event(), threading.Event()

    def swap() -> None:
        with gate.together():
            with gate.call():  # the first rename
                closing.wait(5)
            with gate.call():  # the second goes out although the gate closed meanwhile
                second_sent.set()

    def stop() -> None:
        if gate.close(5):
            closed.set()

    worker = threading.Thread(target=swap)
    worker.start()
    while gate.in_flight == 0:
        time.sleep(0.01)
    stopper = threading.Thread(target=stop)
    stopper.start()
    time.sleep(0.1)
    assert not closed.is_set()  # it waits for the block, not only for the call in flight
    closing.set()
    worker.join(5)
    stopper.join(5)
    assert second_sent.is_set() and closed.is_set() and gate.in_flight == 0
