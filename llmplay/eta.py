"""Time left in a long job, from its measured rate, as a countdown (training steps, evaluation cells).

``remaining(done, total, busy_s, since_s)``: ``done`` of ``total`` units finished in ``busy_s`` seconds of
work, the unit in progress started ``since_s`` seconds ago. Between two finished units the estimate counts down
one second per second; a unit that runs longer than the average so far raises it smoothly (that unit will take
at least as long as it has run), never by a jump. When a unit finishes faster than the average the estimate
drops: it may fall, but never jumps up. ``prior_s``: the seconds a unit took before (a measured rate from an
earlier job on this machine), for an estimate before the first unit ends.

Standard library only: training, evaluation and the UI share it.
"""

from __future__ import annotations


def remaining(done: int, total: int, busy_s: float, since_s: float = 0.0, prior_s: float | None = None) -> float | None:
    """Seconds left, or None while there is nothing to go on (no unit finished and no prior rate)."""
    left_units = max(0, int(total) - int(done))
    if left_units == 0:
        return 0.0
    since_s = max(0.0, float(since_s))
    if done > 0 and busy_s > 0:
        rate = busy_s / done
    elif prior_s and prior_s > 0:
        rate = float(prior_s)
    else:
        return None
    counting = left_units * rate - since_s  # the finished units' pace, counting down
    # The unit in progress has taken since_s so far: were it to finish now, the pace would be this.
    floor = (left_units - 1) * (max(busy_s, 0.0) + since_s) / (done + 1) if done > 0 or since_s > rate else 0.0
    return max(counting, floor, 0.0)


def duration(seconds: float) -> str:
    """``45 s`` / ``3 min 20 s`` / ``1 h 05 min``: one way of writing a length of time for every view."""
    seconds = int(round(max(0.0, seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def describe(seconds: float | None) -> str:
    """``about 3 min 20 s left`` (``finishing`` at zero); ``""`` when unknown."""
    if seconds is None or seconds != seconds:  # NaN
        return ""
    if int(round(max(0.0, seconds))) == 0:
        return "finishing"
    return f"about {duration(seconds)} left"
