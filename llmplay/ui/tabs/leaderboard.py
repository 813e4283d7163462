"""The Leaderboard tab: Bradley-Terry ratings of the counted Arena votes (``ArenaTab.leaderboard``, also the
``/leaderboard`` endpoint), filtered by template and dates, and a win-rate heat-map."""

from __future__ import annotations

import html
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from llmplay.services import Services
from llmplay.ui.access import declare
from llmplay.ui.refresh import View
from llmplay.ui.tabs.arena import ArenaTab

ALL_TEMPLATES = "(all votes)"
TABLE_HEADERS = ["rank", "model", "rating", "95% interval", "battles", "wins", "losses", "ties"]


def win_colour(rate: float) -> str:
    """Red (0%) through white (50%) to green (100%)."""
    low, high, white = (248, 105, 107), (99, 190, 123), (255, 255, 255)
    end, t = (high, (rate - 0.5) * 2) if rate >= 0.5 else (low, (0.5 - rate) * 2)
    r, g, b = (round(w + (e - w) * t) for w, e in zip(white, end, strict=True))
    return f"rgb({r}, {g}, {b})"


def heatmap_html(models: list[str], win_rate: list[list[float | None]], battles: list[list[int]]) -> str:
    """The win-rate matrix (Leaderboard.win_rate, .battles) as an HTML table with coloured cells."""
    if not models:
        return "<p>No counted votes match these filters yet: vote in the Arena, then open this tab again.</p>"
    cell = "padding:4px 8px;text-align:center;border:1px solid #ddd"
    head = "".join(f"<th style='{cell}'>{html.escape(k)}</th>" for k in models)
    rows = []
    for i, key in enumerate(models):
        cells = []
        for j, other in enumerate(models):
            rate_ij, games = win_rate[i][j], battles[i][j]
            if i == j or rate_ij is None:
                cells.append(f"<td style='{cell};background:#f3f3f3;color:#999'>—</td>")
                continue
            tip = html.escape(f"{key} vs {other}: {rate_ij:.0%} over {games} battle(s)", quote=True)
            style = f"{cell};background:{win_colour(rate_ij)};color:#111"
            cells.append(f"<td style='{style}' title='{tip}'>{rate_ij:.0%}<br><small>{games}</small></td>")
        rows.append(f"<tr><th style='{cell};text-align:left'>{html.escape(key)}</th>{''.join(cells)}</tr>")
    return (
        "<table style='border-collapse:collapse'>"
        f"<tr><th style='{cell}'>row beats column</th>{head}</tr>{''.join(rows)}</table>"
        "<p><small>Share of the row model's battles against the column model that it won (ties count half); "
        "the small number is how many battles they had.</small></p>"
    )


@dataclass
class LeaderboardHandle:
    tab: ArenaTab
    view: View  # the ratings read afresh (the app reloads it when the tab opens and after every vote)


def build_leaderboard_tab(services: Services, demo: gr.Blocks) -> LeaderboardHandle:
    """Lay out the Leaderboard inside the current Blocks context and wire its events."""
    tab = ArenaTab(services.engine, services.templates)
    gr.Markdown(
        "Bradley-Terry ratings on the Elo scale (mean 1000) fitted on the counted Arena votes; a tie or "
        "*both bad* counts half a win each. The interval is a 95% bootstrap interval over the votes; "
        "rank 1 + the number of models whose interval lies wholly above."
    )
    with gr.Row():
        template = gr.Dropdown([(ALL_TEMPLATES, "")], value="", label="Template", allow_custom_value=True)
        since = gr.Textbox("", label="Since (date, e.g. 2025-03-01)", placeholder="the beginning")
        until = gr.Textbox("", label="Until (date, included)", placeholder="now")
        refresh = gr.Button("Refresh", variant="primary", scale=0)
    summary = gr.Markdown(elem_id="leaderboard-summary")
    table = gr.Dataframe(headers=TABLE_HEADERS, interactive=False, elem_id="leaderboard-table")
    gr.Markdown("### Win rates")
    heatmap = gr.HTML(elem_id="leaderboard-heatmap")

    gr.api(tab.leaderboard, api_name="leaderboard")

    @declare("view")
    def show(chosen: str, start: str, end: str) -> tuple:
        data = tab.leaderboard(chosen, start, end)
        choices = [(ALL_TEMPLATES, "")] + [(t, t) for t in data["templates"]]
        picker = gr.Dropdown(choices=choices, value=chosen or "")
        if data["error"]:
            return data["error"], gr.skip(), gr.skip(), picker
        frame = pd.DataFrame(data["rows"], columns=TABLE_HEADERS)
        heat = heatmap_html(data["models"], data["win_rate"], data["battles"])
        return f"{data['votes']} counted vote(s), {len(data['models'])} model(s).", frame, heat, picker

    private = {"api_visibility": "private"}
    outputs = [summary, table, heatmap, template]
    gr.on(
        [refresh.click, template.input, since.submit, until.submit], show, [template, since, until], outputs, **private
    )
    demo.load(show, [template, since, until], outputs, **private)
    return LeaderboardHandle(tab, View(show, [template, since, until], outputs))
