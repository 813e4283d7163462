"""The Traces tab (admins): every request the OpenAI-compatible API answered (llmplay/traces.py), filtered by
model / line / version, user, dates, finish reason and text; one trace in full; chosen traces sent to a labeling
queue for review; the online evaluation's scores per line, version and day (llmplay/loop/online.py), so a
promotion's effect on live traffic shows. Reads afresh when the tab opens and on Refresh."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from llmplay import traces
from llmplay.errors import LlmplayError
from llmplay.feedback.store import list_queues
from llmplay.loop import online as online_eval
from llmplay.models.lines import LINE_PREFIX
from llmplay.services import Services
from llmplay.store import connect
from llmplay.ui.access import caller_of, declare
from llmplay.ui.common import format_error
from llmplay.ui.refresh import View

HEADERS = ["id", "at", "user", "model", "served by", "finish", "tokens", "latency s", "reply"]
REASONS = ["", "stop", "length", "error", "cancelled"]
EMPTY = (
    "No traces match. Applications call llmplay's OpenAI-compatible API at `/v1` with a key "
    "(`llmplay users key NAME`); every request shows here (see the README: *Use llmplay from your application*)."
)


def trace_rows(found: list[traces.Trace]) -> pd.DataFrame:
    rows = [
        [t.id, t.at, t.user or "", t.model, t.served, t.finish_reason, t.completion_tokens,
         round(t.latency_s, 2) if t.latency_s is not None else None, " ".join(t.reply.split())[:80]]
        for t in found
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=HEADERS)


def scores_table(days: list[online_eval.VersionDay]) -> pd.DataFrame:
    headers, rows = online_eval.summary_rows(days)
    return pd.DataFrame(rows, columns=headers)


def trace_html(trace: traces.Trace | None, online: dict | None = None) -> str:
    """One trace in full: the request's turns, the reply, and its figures (all text escaped)."""
    if trace is None:
        return "<p>Pick a trace in the table (or paste its id) to see it in full.</p>"
    if isinstance(trace.request, list):
        turns = "".join(
            f"<p><b>{html.escape(str(m.get('role', '')))}</b>: {html.escape(str(m.get('content', '')))}</p>"
            for m in trace.request
        )
    else:
        turns = f"<pre>{html.escape(str(trace.request))}</pre>"
    figures = (
        f"{trace.prompt_tokens} prompt + {trace.completion_tokens} reply tokens · latency {trace.latency_s or 0:.2f} s"
        f" · first token {trace.ttft_s or 0:.2f} s · {trace.backend or '?'} · {trace.finish_reason}"
    )
    error = f"<p><b>Error:</b> {html.escape(trace.error)}</p>" if trace.error else ""
    if online:  # the online evaluation's scores of this trace, with why a check failed / the judge's verdict
        items = "".join(
            f"<li>{html.escape(name)}: {value:.2f}"
            + (f" — {html.escape(str(online['details'][name]))}" if name in online["details"] else "")
            + "</li>"
            for name, value in online["scores"].items()
        )
        error += f"<p><b>Online scores</b></p><ul>{items}</ul>"
    return (
        f"<h4>{html.escape(trace.id)}</h4><p><small>{html.escape(trace.at)} · {html.escape(trace.user or '')} · "
        f"asked {html.escape(trace.model)}, answered by {html.escape(trace.served)}</small></p>{turns}"
        f"<p><b>reply</b>: {html.escape(trace.reply)}</p>{error}<p><small>{html.escape(figures)} · parameters "
        f"{html.escape(json.dumps(trace.params))}</small></p>"
    )


@dataclass
class TracesHandle:
    """The tab's refresh view, and what the app wires to Compare: the button and the picked trace ids."""

    view: View
    open_in_compare: gr.Button
    picked: gr.Textbox
    status: gr.Markdown


def build_traces_tab(services: Services, demo: gr.Blocks) -> TracesHandle:
    settings = services.engine.settings
    gr.Markdown("Requests to the OpenAI-compatible API (`/v1`), newest first.")
    with gr.Row():
        model = gr.Textbox(label="Model, version or line:NAME", scale=2)
        user = gr.Textbox(label="User")
        since = gr.Textbox(label="Since (e.g. 2026-12-01)")
        until = gr.Textbox(label="Until")
        reason = gr.Dropdown(REASONS, value="", label="Finish reason")
        rating = gr.Dropdown(["", *traces.RATINGS], value="", label="Rating")
        search = gr.Textbox(label="Text in request or reply", scale=2)
        refresh = gr.Button("Refresh", variant="primary", scale=0)
    summary = gr.Markdown(elem_id="traces-summary")
    table = gr.Dataframe(headers=HEADERS, interactive=False, elem_id="traces-table", wrap=True)
    with gr.Row():
        picked = gr.Textbox(label="Trace ids (comma-separated; a click in the table adds one)", scale=3)
        queue = gr.Dropdown([], label="Labeling queue", allow_custom_value=False)
        send = gr.Button("Send to queue", scale=0)
        to_compare = gr.Button("Open in Compare", scale=0, elem_id="traces-open-compare")
    sent = gr.Markdown()
    detail = gr.HTML(trace_html(None), elem_id="traces-detail")
    with gr.Accordion("Online scores per version and day", open=True):
        gr.Markdown(
            "A line's sampled traces are scored in the background by the checks it names "
            "(`llmplay loop set NAME 'online={sample: 0.2, checks: [...], judge: {}}'`); filter by `line:NAME` above."
        )
        online = gr.Dataframe(interactive=False, elem_id="traces-online", wrap=True)

    @declare("admin", "see API traces", read=True)
    def show(model_, user_, since_, until_, reason_, search_, rating_=""):
        try:
            found = traces.list_traces(
                settings, model=model_.strip() or None, user=user_.strip() or None, since=since_.strip() or None,
                until=until_.strip() or None, finish_reason=reason_ or None, search=search_.strip() or None,
                rating=rating_ or None,
            )  # fmt: skip
            with connect(settings.db_path) as db:
                names = [q.name for q in list_queues(db)]
        except LlmplayError as exc:
            return format_error(str(exc)), gr.skip(), gr.skip(), gr.skip()
        text = EMPTY if not found else f"{len(found)} trace(s) (at most 100 shown; narrow the filters for more)."
        line = model_.strip()[len(LINE_PREFIX) :] if model_.strip().startswith(LINE_PREFIX) else None
        days = online_eval.summary(settings, line, since=since_.strip() or None)
        return text, trace_rows(found), gr.Dropdown(choices=names), scores_table(days)

    @declare("admin", "see API traces", read=True)
    def pick(ids: str, evt: gr.SelectData):
        row = evt.row_value if evt is not None else None
        if not row:
            return gr.skip(), gr.skip()
        chosen = [i.strip() for i in (ids or "").split(",") if i.strip()]
        if row[0] not in chosen:
            chosen.append(row[0])
        return ", ".join(chosen), trace_html(
            traces.get_trace(settings, row[0]), online_eval.scores_of(settings, row[0])
        )

    @declare("admin", "send API traces to a queue")
    def to_queue(ids: str, queue_name: str, request: gr.Request):
        chosen = [i.strip() for i in (ids or "").split(",") if i.strip()]
        if not chosen or not queue_name:
            return format_error("Pick one or more traces and a queue first.")
        try:
            caller = caller_of(settings, request)
            added, existing = traces.to_queue(settings, chosen, queue_name, user=caller.name)
        except LlmplayError as exc:
            return format_error(str(exc))
        return f"✅ {added} item(s) added to **{queue_name}**" + (
            f" ({existing} were there already)." if existing else "."
        )

    filters = [model, user, since, until, reason, search, rating]
    outputs = [summary, table, queue, online]
    private = {"api_visibility": "private"}
    gr.on([refresh.click, search.submit, model.submit, user.submit], show, filters, outputs, **private)
    table.select(pick, [picked], [picked, detail], **private)
    send.click(to_queue, [picked, queue], [sent], **private)
    return TracesHandle(View(show, filters, outputs), to_compare, picked, sent)
