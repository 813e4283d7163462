"""Migrations of the API's request traces (llmplay/traces.py)."""

from __future__ import annotations

from sqlite_utils import Database


def m014_api_traces(db: Database) -> None:
    # One row per API request the server answered (llmplay/traces.py): feedback on a trace reads its reply here.
    db["api_traces"].create(
        {
            "id": str,  # the response's id (chatcmpl-... / cmpl-...), also the X-Llmplay-Trace-Id header
            "at": str,
            "user": str,  # the key's user; "local" in single-user mode
            "endpoint": str,  # chat | completion
            "model": str,  # as asked: a catalog name, a version label or line:NAME
            "served": str,  # what answered: the line's active version, else the model itself
            "line": str,  # the line's name when one was asked for
            "request": str,  # JSON: messages or prompt, as the model got them (after redaction)
            "params": str,  # JSON: the decoding parameters
            "reply": str,
            "finish_reason": str,  # stop | length | error | cancelled
            "error": str,
            "prompt_tokens": int,
            "completion_tokens": int,
            "latency_s": float,
            "ttft_s": float,
            "backend": str,
            "stream": int,
        },
        pk="id",
        not_null={"at", "endpoint", "model", "served", "request", "finish_reason"},
    )
    db["api_traces"].create_index(["at"])
    db["api_traces"].create_index(["served", "at"])


def m016_trace_evals(db: Database) -> None:
    # Online evaluation (llmplay/loop/online.py): one row per trace of a line the scorer has looked at.
    db["trace_evals"].create(
        {
            "trace_id": str,
            "line": str,
            "served": str,  # the version that answered (the trace's served)
            "at": str,  # the trace's time, so scores group by when the traffic happened
            "scored_at": str,
            "sampled": int,  # 0: outside the line's sample (looked at, not scored)
            "scores": str,  # JSON {check: 0-1}
            "details": str,  # JSON {check: why it failed / the judge's verdict}
        },
        pk="trace_id",
        not_null={"line", "served", "at", "scored_at", "sampled"},
    )
    db["trace_evals"].create_index(["line", "at"])
