"""Evaluation runs as background jobs: dataset rows x columns through the engine, outputs cached in SQLite.

``EvalRunner.submit`` checks the whole config at once (dataset, templates, models, metrics, mapping), so
mistakes are reported before anything runs, then executes the run on a worker thread in this process: local
models are loaded once per process and shared with the rest of the app, and runs execute one at a time
(local generation is serialised per model anyway). Progress lives in the ``eval_runs`` row, so the UI (or
another process) polls it; ``cancel`` stops generation mid-batch within a few seconds and keeps every
finished row. ``run`` does the same synchronously (the CLI).

Caching: each cell's output is stored under a key of everything that decides it (see outputs.py). Re-running
an unchanged cell reuses the stored output; only changed cells are generated.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from llmplay import eta as eta_module
from llmplay.engine.base import Provider
from llmplay.engine.engine import Engine
from llmplay.engine.types import GenerationRequest, GenerationResult
from llmplay.errors import InvalidRequestError, LlmplayError
from llmplay.evaluation import batch_choice, conversations, outputs, rates
from llmplay.evaluation import judge as judging
from llmplay.evaluation.config import RunConfig
from llmplay.evaluation.metrics.registry import MetricRegistry, default_registry
from llmplay.evaluation.plan import Cell, Plan, PlannedColumn, plan_run, request_messages
from llmplay.evaluation.progress import RunProgress, mark_interrupted
from llmplay.evaluation.scorer import ScoringError
from llmplay.evaluation.summary import score_run
from llmplay.evaluation.toolcalls import reply_answer
from llmplay.store import connect, immediate
from llmplay.templates.library import TemplateLibrary
from llmplay.templates.render import base_model_prompt, build_request

log = logging.getLogger(__name__)
CHUNK_TARGET_S = 4.0  # a chunk's work between two progress updates (and cancel checks)
# A synchronous run (the CLI, CI) prints a line per chunk and has no grid to fill: bigger chunks batch more rows
# (bench/generation.py: SmolLM2 float32 22 tok/s one at a time, 129 in a batch of 32), at a line every ~16 s.
UNWATCHED_CHUNK_S = 16.0


@dataclass
class _Job:
    cancel: threading.Event
    thread: threading.Thread | None = None
    started: float = 0.0
    generating_s: float = 0.0  # time spent generating, for the ETA
    generated: int = 0
    chunk_began: float | None = None  # perf_counter when the chunk in progress started (None: none running)
    prior_s: float | None = None  # seconds per cell measured on this machine before (rates.py), first estimate
    watched: bool = True  # a background run the UI polls (small chunks); False: ``run`` (bigger ones)


class EvalRunner:
    def __init__(
        self,
        engine: Engine,
        library: TemplateLibrary | None = None,
        registry: MetricRegistry | None = None,
        chunk_size: int | None = None,
    ):
        """``chunk_size``: cells generated between progress updates and cancel checks. Default: sized as the run
        goes so a chunk takes about CHUNK_TARGET_S on this machine (at most the batch size, and at most a fifth of
        a column), so progress moves every few seconds and the grid fills in as cells finish."""
        self.engine = engine
        self.fixed_chunk = chunk_size
        self.chunk_size = chunk_size or engine.settings.max_batch_size
        self.settings = engine.settings
        self.library = library or TemplateLibrary.from_settings(self.settings)
        self.registry = registry or default_registry()
        self._jobs: dict[int, _Job] = {}
        self._serial = threading.Lock()  # one run generates at a time
        mark_interrupted(self.settings.db_path)

    # ---- public ------------------------------------------------------------------------------------------
    def submit(self, config: RunConfig) -> int:
        """Check ``config`` (raising with every problem) and start it in the background; returns the run id."""
        plan = self.plan(config)
        run_id = self._create(plan)
        job = self._jobs[run_id]
        job.thread = threading.Thread(target=self._execute, args=(plan, run_id, job), name=f"eval-run-{run_id}")
        job.thread.daemon = True
        job.thread.start()
        return run_id

    def run(self, config: RunConfig, on_progress: Callable[[RunProgress], None] | None = None) -> int:
        """Run synchronously in this thread (the CLI); returns the run id."""
        plan = self.plan(config)
        run_id = self._create(plan)
        self._jobs[run_id].watched = False
        self._execute(plan, run_id, self._jobs[run_id], on_progress)
        return run_id

    def cancel(self, run_id: int) -> bool:
        """Ask a run of this process to stop; True if it was still active."""
        job = self._jobs.get(run_id)
        if job is None or self.progress(run_id).finished:
            return False
        job.cancel.set()
        return True

    def wait(self, run_id: int, timeout: float | None = None) -> RunProgress:
        job = self._jobs.get(run_id)
        if job is not None and job.thread is not None:
            job.thread.join(timeout)
        return self.progress(run_id)

    def progress(self, run_id: int) -> RunProgress:
        with connect(self.settings.db_path) as db:
            row = next(db.query("select * from eval_runs where id = ?", [run_id]), None)
        if row is None:
            raise InvalidRequestError(f"No evaluation run #{run_id}.")
        job = self._jobs.get(run_id)
        elapsed = row["elapsed_s"] or 0.0
        eta = None
        if job is not None and row["status"] == "running":
            now = time.perf_counter()
            elapsed = now - job.started
            # Cells still to do at the pace of generation so far (cached ones go faster), counting down while a
            # chunk runs (llmplay/eta.py); before the first chunk ends, at the pace measured in earlier runs.
            left = (row["total_cells"] or 0) - (row["done_cells"] or 0)
            since = now - job.chunk_began if job.chunk_began is not None else 0.0
            eta = eta_module.remaining(job.generated, job.generated + left, job.generating_s, since, job.prior_s)
        return RunProgress(
            run_id=run_id,
            status=row["status"],
            done=row["done_cells"] or 0,
            total=row["total_cells"] or 0,
            generated=row["generated_cells"] or 0,
            cached=row["cached_cells"] or 0,
            failed=row["failed_cells"] or 0,
            elapsed_s=elapsed,
            eta_s=eta,
            error=row["error"] or "",
        )

    # ---- planning: every check before anything runs --------------------------------------------------------
    def plan(self, config: RunConfig) -> Plan:
        return plan_run(self.settings, self.engine, self.library, self.registry, config)

    def _create(self, plan: Plan) -> int:
        config = plan.config.to_dict()
        config["resolved"] = {
            "columns": [
                {
                    "title": title,
                    "template_version_id": c.version.id,
                    "template_version": c.version.number,
                    "mode": c.mode,
                    "variables": c.variables,
                    "dtype": c.dtype,
                }
                for c, title in zip(plan.columns, plan.config.titles())
            ],
            "metrics": [m.to_dict() for m in plan.metrics],
            "reference": plan.reference_column,
            "skipped_metrics": plan.skipped_metrics,
            "judge_template_version_id": plan.judge_version.id if plan.judge_version else None,
        }
        name = plan.config.name or f"{plan.config.dataset} × {len(plan.columns)} column(s)"
        with connect(self.settings.db_path) as db, immediate(db):
            run_id = (
                db["eval_runs"]
                .insert(
                    {
                        "name": name,
                        "status": "queued",
                        "config": json.dumps(config, ensure_ascii=False),
                        "dataset": plan.config.dataset,
                        "dataset_hash": plan.dataset_hash,
                        "rows": len(plan.rows),
                        "total_cells": len(plan.rows) * len(plan.columns),
                        "done_cells": 0,
                        "generated_cells": 0,
                        "cached_cells": 0,
                        "failed_cells": 0,
                        "created_at": _now(),
                        "pid": os.getpid(),
                    }
                )
                .last_pk
            )
            db["eval_rows"].insert_all(
                {"run_id": run_id, "row_index": i, "source_index": src, "data": json.dumps(row, ensure_ascii=False)}
                for i, (row, src) in enumerate(zip(plan.rows, plan.source_index))
            )
        self._jobs[run_id] = _Job(cancel=threading.Event())
        return run_id

    def _execute(self, plan: Plan, run_id: int, job: _Job, on_progress=None) -> None:
        with self._serial:
            job.started = time.perf_counter()
            self._update(run_id, status="running", started_at=_now())
            status, error = "done", None
            try:
                for column in plan.columns:
                    if job.cancel.is_set():
                        break
                    self._run_column(plan, column, run_id, job, on_progress)
                if plan.config.judge and not job.cancel.is_set():
                    self._run_judge(plan, run_id, job)
                if job.cancel.is_set():
                    status = "cancelled"
            except Exception as exc:  # a bug or a broken model must end the run visibly, not hang it
                log.exception("evaluation run %s failed", run_id)
                status, error = "failed", f"{type(exc).__name__}: {exc}"
            try:
                score_run(self.settings, run_id, self.registry)
            except (LlmplayError, ScoringError) as exc:
                error = error or f"Scoring failed: {exc}"
                status = "failed" if status == "done" else status
            except Exception as exc:
                log.exception("scoring run %s failed", run_id)
                error = error or f"Scoring failed: {type(exc).__name__}: {exc}"
                status = "failed" if status == "done" else status
            self._update(
                run_id,
                status=status,
                error=error,
                finished_at=_now(),
                elapsed_s=round(time.perf_counter() - job.started, 3),
            )
            if on_progress:
                on_progress(self.progress(run_id))

    def _run_column(self, plan: Plan, column: PlannedColumn, run_id: int, job: _Job, on_progress) -> None:
        cells = self._prepare_cells(plan, column)
        ready = [c for c in cells if c.error is None]
        with connect(self.settings.db_path) as db:
            stored = outputs.find(db, [c.key for c in ready])
            with immediate(db):
                for cell in cells:
                    if cell.error is not None:
                        self._insert_cell(db, run_id, column, cell, None, error=cell.error)
                    elif cell.key in stored:
                        self._insert_cell(db, run_id, column, cell, stored[cell.key], cached=True)
                self._count(db, run_id)
        missing = [c for c in ready if c.key not in stored]
        if on_progress:
            on_progress(self.progress(run_id))
        model, data_dir = column.spec.name, self.settings.data_dir
        job.prior_s = job.prior_s or rates.seconds_per_cell(data_dir, model, column.mode, column.dtype)
        # Chunks are sized by this run's own pace, not the stored one: a rate measured on other prompts or answer
        # lengths once sized every chunk at one cell, and a lone cell shares no prompt prefix, so it stayed slow.
        measured = None
        start = 0
        while start < len(missing):
            if job.cancel.is_set():
                return
            batch = missing[start : start + self._chunk(len(missing), measured, job.watched)]
            start += len(batch)
            began = job.chunk_began = time.perf_counter()
            results = self._generate(column, batch, job.cancel)
            spent = time.perf_counter() - began
            job.generating_s += spent
            job.chunk_began = None
            finished = sum(r.finish_reason != "cancelled" for r, _ in results)
            if finished:
                measured = spent / finished
                rates.record(data_dir, model, column.mode, column.dtype, spent, finished)
            shares = rates.row_latencies([r.latency_s for r, _ in results])
            with connect(self.settings.db_path) as db, immediate(db):
                for cell, (result, details), share in zip(batch, results, shares):
                    result.latency_s = share  # this row's share of its batch's time
                    if result.finish_reason == "cancelled":
                        continue  # not finished: neither stored nor counted
                    job.generated += 1
                    if not result.ok:
                        self._insert_cell(db, run_id, column, cell, None, error=result.error)
                        continue
                    output_id = outputs.insert(
                        db,
                        key=cell.key,
                        mode=column.mode,
                        model=column.spec.name,
                        adapter=column.config.adapter,
                        template_version_id=column.version.id,
                        prompt=cell.prompt,
                        params=cell.request.params,  # as decoded (a constrained column's carry its schema)
                        result=result,
                        details=details,
                    )
                    self._insert_cell(db, run_id, column, cell, outputs.get(db, output_id))
                self._count(db, run_id)
            if on_progress:
                on_progress(self.progress(run_id))

    def _chunk(self, missing: int, seconds_per_cell: float | None, watched: bool = True) -> int:
        """Cells in the next chunk: a fixed size when given; else about CHUNK_TARGET_S of work at the measured
        pace (2 cells before any measure), at most the batch size and a fifth of the column's missing cells, so
        the grid fills in; a run nobody watches (``run``): about UNWATCHED_CHUNK_S, up to the batch size."""
        if self.fixed_chunk:
            return max(1, self.fixed_chunk)
        if watched:
            target, most = CHUNK_TARGET_S, max(1, min(self.chunk_size, math.ceil(missing / 5)))
        else:
            target, most = UNWATCHED_CHUNK_S, max(1, self.chunk_size)
        if not seconds_per_cell:
            return min(2, most)
        return max(1, min(most, int(target / seconds_per_cell)))

    def _prepare_cells(self, plan: Plan, column: PlannedColumn) -> list[Cell]:
        """Render every row for this column and compute its cache key, which names the backend chosen for the
        column before the run (batch_choice.py); a row that fails to render is an error cell (with the
        template's message), not a failed run."""
        if column.index not in plan.backends:
            plan.backends.update(self._choose_backends(plan))
        backend = plan.backends[column.index]
        labels = column.template.output.labels if column.mode == "likelihood" else ()
        params = _column_params(column)
        cells = self._render_cells(plan, column)
        for cell in cells:
            if cell.error is None:
                cell.backend = backend
                cell.key = outputs.cache_key(
                    prompt=cell.prompt,
                    spec=column.spec,
                    dtype=column.dtype,
                    adapter=column.config.adapter,
                    params=params,
                    mode=_cache_mode(column),
                    options=tuple(labels),
                    backend=backend,  # what decodes it: another backend's outputs are other outputs
                )
        return cells

    def _render_cells(self, plan: Plan, column: PlannedColumn) -> list[Cell]:
        params = _column_params(column)
        loaded = None
        if column.spec.provider == "local":
            try:
                loaded = self.engine.models.get(column.spec, dtype=column.config.dtype, adapter=column.config.adapter)
            except LlmplayError as exc:
                return [Cell(i, error=f"Model failed to load: {exc}") for i in range(len(plan.rows))]
        cells = []
        for i, row in enumerate(plan.rows):
            cell = Cell(i)
            try:
                values = cell.values = {var: row[col] for var, col in column.variables.items()}
                cell.request, cell.messages = build_request(column.template, column.spec.kind, values, params)
                cell.prompt = _prompt_text(loaded, cell.request)
            except LlmplayError as exc:
                cell.error = str(exc)
            cells.append(cell)
        return cells

    def _choose_backends(self, plan: Plan) -> dict[int, str]:
        def requests_of(column: PlannedColumn) -> list[GenerationRequest]:
            return [c.request for c in self._render_cells(plan, column) if c.error is None]

        return batch_choice.choose(self.engine, self.settings.batch_backend, plan, requests_of)

    def _generate(
        self, column: PlannedColumn, cells: list[Cell], cancel: threading.Event
    ) -> list[tuple[GenerationResult, dict | None]]:
        """One (result, details) per cell; details hold each label's log-probability in likelihood mode."""
        cfg = column.config
        if column.template.conversation is not None:  # each cell a conversation, played turn by turn
            return conversations.play(self.engine, column, cells, cancel)
        if column.mode == "generate":
            results = self.engine.generate(
                cfg.model,
                [c.request for c in cells],
                dtype=cfg.dtype,
                adapter=cfg.adapter,
                cancel=cancel,
                batch_backend=cells[0].backend,
            )
            return [(r, r.details) for r in results]
        # likelihood: the batch's rows and all their labels scored together (shared prompt prefix computed once)
        began = time.perf_counter()
        try:
            rows = self.engine.score_batch(
                cfg.model,
                [c.request for c in cells],
                column.template.output.labels,
                dtype=cfg.dtype,
                adapter=cfg.adapter,
                cancel=cancel,
            )
        except LlmplayError as exc:  # the whole batch is refused (e.g. a prompt-tuning adapter)
            elapsed = time.perf_counter() - began
            return [(GenerationResult.failure(str(exc), cfg.model, elapsed), None) for _ in cells]
        results: list[tuple[GenerationResult, dict | None]] = []
        for row in rows:
            if row.cancelled:
                results.append((Provider.cancelled_result(cfg.model), None))
            elif not row.ok:
                results.append((GenerationResult.failure(row.error or "", cfg.model, row.latency_s), None))
            else:  # the scorer names its backend and precision ("transformers float32", an endpoint's)
                result = GenerationResult(
                    text=row.best(), latency_s=row.latency_s, model=cfg.model, backend=row.backend
                )
                results.append((result, {"options": {s.option: round(s.logprob, 4) for s in row.scores}}))
        return results

    def _run_judge(self, plan: Plan, run_id: int, job: _Job) -> None:
        """Grade every successful cell with the judge model; verdicts are cached outputs too."""
        judge, template, spec = plan.config.judge, plan.judge_template, plan.judge_spec
        assert judge is not None and template is not None and spec is not None
        loaded = self.engine.models.get(spec) if spec.provider == "local" else None
        with connect(self.settings.db_path) as db:
            cells = list(db.query("select * from eval_cells where run_id = ? and output_id is not null", [run_id]))
            texts = {c["output_id"]: outputs.get(db, c["output_id"]).text for c in cells}
        work = []
        for c in cells:
            column = plan.columns[c["column_index"]]
            messages = request_messages(column, plan.rows[c["row_index"]])
            reference = plan.references[c["row_index"]] if plan.references else None
            values = judging.judge_values(template, messages, texts[c["output_id"]], reference)
            request, _ = build_request(template, spec.kind, values, judge.params)
            prompt = _prompt_text(loaded, request)
            key = outputs.cache_key(
                prompt=prompt, spec=spec, dtype=self.settings.dtype, adapter=None, params=judge.params, mode="judge"
            )
            work.append((c, request, prompt, key))
        with connect(self.settings.db_path) as db:
            stored = outputs.find(db, [w[3] for w in work])
        missing = [w for w in work if w[3] not in stored]
        chunk = max(1, self.chunk_size)
        for start in range(0, len(missing), chunk):
            if job.cancel.is_set():
                return
            batch = missing[start : start + chunk]
            # on the reference, as the verdicts' cache key says
            results = self.engine.generate(
                judge.model, [w[1] for w in batch], cancel=job.cancel, batch_backend=outputs.REFERENCE
            )
            with connect(self.settings.db_path) as db, immediate(db):
                for (_, _, prompt, key), result in zip(batch, results):
                    if result.ok:
                        outputs.insert(
                            db,
                            key=key,
                            mode="judge",
                            model=spec.name,
                            adapter=None,
                            template_version_id=plan.judge_version.id if plan.judge_version else None,
                            prompt=prompt,
                            params=judge.params,
                            result=result,
                        )
        with connect(self.settings.db_path) as db, immediate(db):
            stored = outputs.find(db, [w[3] for w in work])
            for c, _, _, key in work:
                verdict = stored.get(key)
                if verdict is None:
                    continue
                db["eval_cells"].update(
                    (run_id, c["row_index"], c["column_index"]),
                    {"judge_output_id": verdict.id, "judge_score": judging.grade(template, verdict.text)},
                )

    # ---- bookkeeping ---------------------------------------------------------------------------------------
    def _insert_cell(
        self, db, run_id: int, column: PlannedColumn, cell: Cell, output, cached=False, error=None
    ) -> None:
        if output is None:
            answer = None
        elif column.template.conversation is not None:  # the replies turn by turn, for the turn metrics
            answer = conversations.answer_of(output.details)
        else:
            answer = reply_answer(column.template, output.text)
        db["eval_cells"].insert(
            {
                "run_id": run_id,
                "row_index": cell.row,
                "column_index": column.index,
                "output_id": output.id if output is not None else None,
                "answer": answer,
                "scores": "{}",
                "cached": int(cached),
                "error": error,
            },
            replace=True,
        )

    def _count(self, db, run_id: int) -> None:
        row = next(
            db.query(
                "select count(*) as done, coalesce(sum(cached), 0) as cached, "
                "coalesce(sum(error is not null), 0) as failed from eval_cells where run_id = ?",
                [run_id],
            )
        )
        db["eval_runs"].update(
            run_id,
            {
                "done_cells": row["done"],
                "cached_cells": row["cached"],
                "failed_cells": row["failed"],
                "generated_cells": row["done"] - row["cached"] - row["failed"],
            },
        )

    def _update(self, run_id: int, **values) -> None:
        with connect(self.settings.db_path) as db, immediate(db):
            db["eval_runs"].update(run_id, values)


def _cache_mode(column: PlannedColumn) -> str:
    """The answer mode in a cell's cache key; a conversation's replies mode decides its outputs too."""
    spec = column.template.conversation
    return column.mode if spec is None else f"conversation-{spec.replies}"


def _column_params(column: PlannedColumn):
    params = column.config.params
    if column.config.constrained:  # the schema travels in the decoding parameters (and so in the cache key)
        params = replace(params, json_schema=json.dumps(column.template.output.schema, sort_keys=True))
    return params


def _prompt_text(loaded, request: GenerationRequest) -> str:
    """The exact text a local model sees; for an endpoint, its messages (the server applies its template)."""
    if loaded is not None:
        from llmplay.engine.prompt_text import render_prompt

        return render_prompt(loaded, request)
    if request.messages is not None and request.tools:  # offered tools change the reply: they are in the key
        return json.dumps({"messages": request.as_messages(), "tools": list(request.tools)}, ensure_ascii=False)
    if request.messages is not None:
        return json.dumps(request.as_messages(), ensure_ascii=False)
    return request.prompt or base_model_prompt(request.as_messages())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
