"""The Evaluate tab's poll while a run goes (ui/tabs/evaluate/tab.py): the grid of the run being shown is
renewed when more cells have finished, left alone otherwise, and the count it was renewed at is kept."""

from __future__ import annotations

import gradio as gr

from llmplay.evaluation.progress import RunProgress
from llmplay.ui.tabs.evaluate.tab import EvaluateTab


class Runner:
    def __init__(self) -> None:
        self.done = 0

    def progress(self, run_id: int) -> RunProgress:
        return RunProgress(run_id, "running", self.done, 40, self.done, 0, 0, 12.0, 30.0)


def tab_with(runner: Runner) -> EvaluateTab:
    tab = EvaluateTab.__new__(EvaluateTab)  # the poll needs only the runner and the grid
    tab.runner = runner
    tab.grid_view = lambda run_id, show, metric: f"grid of run {run_id} at {runner.done} cells"
    return tab


def test_the_shown_runs_grid_fills_in_as_cells_finish():
    runner = Runner()
    tab = tab_with(runner)
    runner.done = 8
    text, bar, *rest = tab.poll(3, 3, "all", "", None)
    grid, seen = rest[-2:]
    assert "8/40 cells" in text and "about 30 s left" in text and "data-done='8'" in bar
    assert grid == "grid of run 3 at 8 cells" and seen == 8
    same = tab.poll(3, 3, "all", "", 8)[-2:]  # nothing new finished: the grid is left as it is
    assert all(isinstance(v, type(gr.skip())) for v in same)
    runner.done = 16
    assert tab.poll(3, 3, "all", "", 8)[-2:] == ("grid of run 3 at 16 cells", 16)
    other = tab.poll(3, 2, "all", "", None)[-2:]  # another run is shown: its grid stays
    assert all(isinstance(v, type(gr.skip())) for v in other)
