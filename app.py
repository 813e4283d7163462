"""Entry point (also for Hugging Face Spaces): settings from the environment, an engine, the web app.

On Spaces GRADIO_SERVER_NAME=0.0.0.0, which Settings.from_env honours.
"""

from llmplay.backup_schedule import restore_at_start, scheduled_backups
from llmplay.engine import Engine
from llmplay.settings import Settings
from llmplay.ui import launch

if __name__ == "__main__":
    settings = Settings.from_env()
    restore_at_start(settings)  # LLMPLAY_BACKUP_DIR (a mounted bucket): the Space's local disk starts empty
    with scheduled_backups(settings):  # every LLMPLAY_BACKUP_INTERVAL_S, and a last one at shutdown
        launch(Engine(settings))
