"""Entry point (also for Hugging Face Spaces): settings from the environment, an engine, the web app.

On Spaces GRADIO_SERVER_NAME=0.0.0.0, which Settings.from_env honours.
"""

from llmplay.engine import Engine
from llmplay.settings import Settings
from llmplay.ui import launch

if __name__ == "__main__":
    settings = Settings.from_env()
    launch(Engine(settings))
