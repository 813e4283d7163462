"""The web UI, the only package that imports gradio: ``build_app`` assembles the tabs, ``launch`` serves them."""

from llmplay.ui.app import build_app, launch

__all__ = ["build_app", "launch"]
