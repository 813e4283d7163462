"""Plain HTTP routes of the app (FastAPI, no gradio): what scripts call without Gradio's queue, and /health."""
