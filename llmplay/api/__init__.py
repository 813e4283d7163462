"""Plain HTTP routes of the app (FastAPI, no gradio): what scripts call without Gradio's queue, and /health.

A thin layer over the feature packages, like the UI beside it: it must not know the UI (gradio) and holds no
rules of its own that a feature package should hold.
"""
