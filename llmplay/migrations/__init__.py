"""The database schema: every table's migrations, one module per package that owns the tables.

The order below is the order existing databases were migrated in: sqlite-utils' ``Migrations`` records each
applied name in ``_sqlite_migrations``, so a name is never changed, renumbered or moved in the list; a new
table or column is a new function appended at the end (next number), in its owner's module.

The migrations live here, not inside each package, because the order runs across packages and ``store`` must
apply all of them without importing the packages (which sit above it). So this package knows sqlite-utils
and the standard library only: never a feature package, and no code that may change after it shipped (a
migration's data step keeps its own copy of what it needs, as ``feedback_inbox`` does).
"""

from __future__ import annotations

from sqlite_utils.migrations import Migrations

from llmplay.migrations import (
    arena,
    auth,
    chat_replies,
    datasets,
    evaluation,
    feedback,
    loop,
    optimize,
    templates,
    traces,
    training,
)

MIGRATIONS = Migrations("llmplay")

for _migration in (
    templates.m001_template_versions,
    datasets.m002_datasets,
    evaluation.m003_eval_runs,
    arena.m004_arena_votes,
    feedback.m005_feedback_inbox,
    training.m006_training,
    feedback.m007_feedback,
    loop.m008_loop,
    auth.m009_users,
    evaluation.m010_output_backend,
    feedback.m011_feedback_provenance,
    chat_replies.m012_chat_replies,
    auth.m013_api_keys,
    traces.m014_api_traces,
    loop.m015_line_serving,
    traces.m016_trace_evals,
    optimize.m017_optimize_searches,
    loop.m018_update_timings,
):
    MIGRATIONS()(_migration)
