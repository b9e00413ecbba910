"""geoest.interrupt: a signal stops at once outside `deferred()`, only at the loop's next whole point
inside it, and at once again when a second one comes."""
import os
import signal

import pytest

from geoest import interrupt


@pytest.fixture
def handlers():
    saved = {s: signal.getsignal(s) for s in interrupt.SIGNALS}
    interrupt.clear()
    interrupt.install()
    yield
    interrupt.clear()
    for s, handler in saved.items():
        signal.signal(s, handler)


def test_outside_deferred_a_signal_stops_at_once(handlers):
    with pytest.raises(interrupt.Interrupted, match="stopped by SIGTERM; re-run the same command"):
        os.kill(os.getpid(), signal.SIGTERM)      # Python runs the handler before the next statement
        pytest.fail("the signal did not stop the run")
    assert interrupt.requested() == "SIGTERM"


def test_inside_deferred_the_loop_stops_where_it_saved(handlers):
    done = []
    with pytest.raises(interrupt.Interrupted, match="stopped by SIGINT: rows 0-1 saved; re-run"):
        with interrupt.deferred():
            for step in range(5):
                done.append(step)
                if step == 1:
                    os.kill(os.getpid(), signal.SIGINT)      # noted, not raised: the step finishes
                interrupt.stop_if_requested(f"rows 0-{step} saved")
    assert done == [0, 1]                                   # the step in which it came was finished and saved
    assert interrupt.requested() == "SIGINT"


def test_a_second_signal_stops_at_once(handlers):
    with pytest.raises(interrupt.Interrupted, match="stopped by SIGTERM; re-run"):
        with interrupt.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            pytest.fail("the second signal did not stop the run")
    assert interrupt.requested() == "SIGTERM"


def test_without_a_signal_nothing_stops(handlers):
    with interrupt.deferred():
        interrupt.stop_if_requested("nothing")
    assert interrupt.requested() is None
