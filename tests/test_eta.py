"""The countdown of a long job (llmplay/eta.py): from the measured pace, down one second per second between
finished units, never jumping up, and rising smoothly only while a unit runs longer than the pace so far."""

from __future__ import annotations

import pytest

from llmplay.eta import describe, remaining


def test_nothing_to_go_on_before_the_first_unit_without_a_prior():
    assert remaining(0, 10, 0.0, 5.0) is None
    assert remaining(0, 10, 0.0, 0.0, prior_s=3.0) == pytest.approx(30.0)


def test_counts_down_one_second_per_second_between_units():
    # 2 of 10 steps in 20 s: 10 s a step, 8 steps left = 80 s; 3 s into the third step, 77 s.
    assert remaining(2, 10, 20.0, 0.0) == pytest.approx(80.0)
    assert remaining(2, 10, 20.0, 3.0) == pytest.approx(77.0)
    shown = [remaining(2, 10, 20.0, t / 2) for t in range(0, 20)]  # polled every half second for 10 s
    assert all(b < a for a, b in zip(shown, shown[1:]))


def test_a_unit_that_takes_as_long_as_the_pace_ends_without_a_jump():
    before = remaining(2, 10, 20.0, 10.0)  # the third step took 10 s: the pace
    after = remaining(3, 10, 30.0, 0.0)
    assert before == pytest.approx(after)


def test_a_slow_unit_raises_the_estimate_smoothly_and_never_jumps_up_at_its_end():
    pace_left = [remaining(2, 10, 20.0, t) for t in range(0, 41)]  # the third step takes 40 s
    steps = [b - a for a, b in zip(pace_left, pace_left[1:])]
    assert max(steps) <= 7 * 1.0 / 3 + 1e-9  # rises at most (left - 1) / (done + 1) per second, continuously
    at_end = remaining(3, 10, 60.0, 0.0)  # the step ended at 40 s: 20 s a step now
    assert at_end <= pace_left[-1] + 1e-9


def test_a_fast_unit_may_drop_the_estimate():
    assert remaining(3, 10, 22.0, 0.0) < remaining(2, 10, 20.0, 2.0)


def test_done_and_wording():
    assert remaining(10, 10, 100.0, 5.0) == 0.0
    assert remaining(9, 10, 90.0, 50.0) == 0.0  # overdue: "finishing", never negative
    assert describe(None) == ""
    assert describe(0) == "finishing"
    assert describe(42) == "about 42 s left"
    assert describe(200) == "about 3 min 20 s left"
    assert describe(7300) == "about 2 h 01 min left"
