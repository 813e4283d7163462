"""The Labeling tab's review panels (agreement & adjudication, dashboard, export / import)."""

from __future__ import annotations

import gradio as gr


def build_review_panels(tab, handle, demo) -> None:
    gr.Markdown("Review panels come next.")
