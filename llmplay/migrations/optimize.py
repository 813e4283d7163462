"""Migrations of the prompt searches' table (llmplay/optimize/)."""

from __future__ import annotations

from sqlite_utils import Database


def m017_optimize_searches(db: Database) -> None:
    # Prompt searches the app ran as background jobs (llmplay/optimize/jobs.py): what was asked, how it went, and
    # what it found, so a reloaded page or a restarted app still shows a finished search and can save its winner.
    db["optimize_searches"].create(
        {
            "id": int,
            "created_at": str,
            "finished_at": str,
            "user": str,
            "pid": int,  # the process running it: a running row whose process is gone was interrupted
            "status": str,  # running | done | cancelled | failed | interrupted
            "model": str,
            "template": str,
            "dataset": str,
            "config": str,  # JSON: OptimizeConfig.to_dict()
            "candidates": str,  # JSON: the candidates table (best first)
            "log": str,  # JSON: the search's last progress lines
            "result": str,  # JSON: winner, test report, calls, seconds, notes (optimize.cli.to_json)
            "start_yaml": str,  # the start template and the winner, for the diff and for saving
            "winner_yaml": str,
            "lineage": str,  # the message a saved winner gets
            "saved_version": int,
            "error": str,
        },
        pk="id",
        not_null={"created_at", "status", "model", "template", "dataset", "config"},
    )
    db["optimize_searches"].create_index(["status"])
