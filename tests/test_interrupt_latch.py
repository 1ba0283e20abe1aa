"""Ctrl-C during training is acted on even when code the driver calls swallows it."""

from __future__ import annotations

import os
import signal
import time

from train.launch import _interrupt_latch


def _swallow_one_interrupt() -> bool:
    """What a library call that catches KeyboardInterrupt does (Ray's waits can)."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1.0)  # the handler runs here
    except KeyboardInterrupt:
        return True
    return False


def test_a_swallowed_ctrl_c_is_still_seen_by_the_watch_loop() -> None:
    before = signal.getsignal(signal.SIGINT)
    with _interrupt_latch() as interrupted:
        assert not interrupted.is_set()
        assert _swallow_one_interrupt()
        assert interrupted.is_set()
    assert signal.getsignal(signal.SIGINT) is before
