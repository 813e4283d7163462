"""Number and slider inputs whose range comes from llmplay.limits, checked by the handler, not by Gradio.

Gradio's own Number/Slider check refuses an out-of-range value with "Value 3 is greater than maximum value
2." (no parameter named) and a precision-0 Number rounds 1.5 to 2 unasked. These pass the value through
as sent; every handler reads it with ``limits.check_number``, whose message names the parameter. The
browser still shows the table's range (the slider's ends, the number box's min and max).
"""

from __future__ import annotations

import gradio as gr

from llmplay.limits import LIMITS, bounds


class CheckedNumber(gr.Number):
    is_template = True  # the browser renders it as a plain Number

    def preprocess(self, payload):
        return payload


class CheckedSlider(gr.Slider):
    is_template = True

    def preprocess(self, payload):
        return payload


def number(name: str, value=None, settings=None, **kwargs) -> CheckedNumber:
    """A number box for parameter ``name`` (its table range; whole numbers for integer parameters)."""
    low, high = bounds(name, settings)
    if LIMITS[name].kind is int:
        kwargs.setdefault("precision", 0)
    return CheckedNumber(value, minimum=low, maximum=high, **kwargs)


def slider(name: str, value=None, settings=None, step: float = 1, **kwargs) -> CheckedSlider:
    """A slider over parameter ``name``'s range (an open low end starts one step above it)."""
    low, high = bounds(name, settings)
    if LIMITS[name].low_open:
        low += step
    return CheckedSlider(low, high, value=value, step=step, **kwargs)
