"""Number and slider inputs whose range comes from llmplay.limits, checked by the handler, not by Gradio.

Gradio's own Number/Slider check refuses an out-of-range value with "Value 3 is greater than maximum value
2." (no parameter named) and a precision-0 Number rounds 1.5 to 2 unasked. These pass the value through
as sent; every handler reads it with ``limits.check_number``, whose message names the parameter. The
browser still shows the table's range (the slider's ends, the number box's min and max).
"""

from __future__ import annotations

import gradio as gr

from llmplay.limits import LIMITS, bounds


def _unchecked(component):
    """The component, passing its payload to the handler as sent (set on the instance: a subclass would make
    Gradio write a .pyi stub next to this file)."""
    component.preprocess = lambda payload: payload
    return component


def number(name: str, value=None, settings=None, **kwargs) -> gr.Number:
    """A number box for parameter ``name`` (its table range unless ``minimum`` says what the box also takes,
    e.g. 0 = all rows; whole numbers for integer parameters)."""
    low, high = bounds(name, settings)
    kwargs = {"minimum": low, "maximum": high, **kwargs}
    if LIMITS[name].kind is int:
        kwargs.setdefault("precision", 0)
    return _unchecked(gr.Number(value, **kwargs))


def slider_range(name: str, step: float, settings=None) -> tuple[float, float]:
    """The ends a slider over parameter ``name`` shows: its range, an open low end one step above it."""
    low, high = bounds(name, settings)
    return (low + step if LIMITS[name].low_open else low), high


def slider(name: str, value=None, settings=None, step: float = 1, **kwargs) -> gr.Slider:
    """A slider over parameter ``name``'s range (``slider_range``)."""
    return _unchecked(gr.Slider(*slider_range(name, step, settings), value=value, step=step, **kwargs))
