"""The web UI, the only package that imports gradio: ``build_app`` assembles the tabs, ``launch`` serves them.

The top of the graph: tabs lay out and wire events on the feature packages; no package imports the UI but the
CLI, and rules that are not about layout belong in the packages below.
"""

from llmplay.ui.app import build_app, launch

__all__ = ["build_app", "launch"]
