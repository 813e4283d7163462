"""The prompt search: candidates scored on dev rows through the evaluation runner, successive halving on growing
dev subsets, the winner proven on test rows the search never read.

Every score comes from an evaluation run (``EvalRunner``): batched, cached by prompt, stored with its rows, so
a saved winner reproduces its dev score from the cache and any run can be reopened in the Evaluate tab. The
runs read split datasets saved for the purpose (``opt-<digest>-pool|devN|test``: the digest names the exact
rows); each run the search makes is listed in ``SearchResult.evaluations`` with the source rows it read, which
is how a test checks that no test row was scored before the final report.

Candidates are saved as versions of a scratch template (``<start>--optimize``, in ``<data dir>/optimize/``,
outside the team's library): an evaluation run names a template version, and the scorer reads it back.

Successive halving: every candidate on the smallest dev subset, the best few on a larger one, ..., the last
ones on all dev rows. Subsets are prefixes of the shuffled dev split, so a promoted candidate's earlier rows come
from the cache. Ranking: dev score, then the shorter prompt, then the earlier candidate. A row that failed (a
prompt the model refused, an error) scores 0: a candidate that breaks the model must not win.

Budget: model calls (cells generated, not cached) of the pool and dev runs, and/or minutes; an evaluation starts
only if its worst case fits the calls left, and one running past the minutes is cancelled (not ranked). The final
test scoring is outside the budget: it is the report.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pandas as pd

from llmplay.backend_names import REFERENCE
from llmplay.datasets import ColumnMapping, Dataset, DatasetError, load_dataset, save_dataset
from llmplay.engine.types import GenerationParams
from llmplay.errors import InvalidRequestError, LlmplayError, ProviderError
from llmplay.evaluation.config import ColumnConfig, MetricConfig, RunConfig
from llmplay.evaluation.metrics.registry import default_registry
from llmplay.evaluation.plan import resolve_column
from llmplay.evaluation.results import RunResults, get_run, load_results
from llmplay.evaluation.runner import EvalRunner
from llmplay.evaluation.stats import Interval, bootstrap_mean, paired_bootstrap
from llmplay.optimize import candidates as space
from llmplay.optimize.candidates import Candidate
from llmplay.optimize.config import OptimizeConfig
from llmplay.optimize.proposer import WrongRow, check_proposer, propose_instructions
from llmplay.optimize.splits import Splits, make_splits
from llmplay.templates import load_template
from llmplay.templates.library import TemplateLibrary
from llmplay.templates.model import Template
from llmplay.templates.versions import Version, parse_ref

PER_ROW = ("accuracy", "exact_match", "numeric_match", "chrf", "rouge", "bleu")  # default metric, in this order
CORPUS_ONLY = ("macro_f1",)  # no per-row score: nothing to pair on
SCRATCH = "--optimize"


@dataclass(frozen=True)
class Evaluation:
    """One evaluation run the search made."""

    run_id: int
    phase: str  # pool (few-shot bootstrap) | dev | test
    dataset: str
    rows: tuple[int, ...]  # the source dataset's row indices the run read
    candidates: tuple[int, ...]
    calls: int  # cells generated (not from the cache)


@dataclass
class Standing:
    candidate: Candidate
    version: int  # the scratch template's version holding it
    scores: dict[int, Interval] = field(default_factory=dict)  # dev rows -> score on that prefix of dev
    calls: int = 0
    failed: int = 0  # rows that failed (scored 0)
    dropped_at: int | None = None  # the rung (dev rows) it was not promoted from

    @property
    def rows(self) -> int:
        return max(self.scores, default=0)

    @property
    def score(self) -> Interval | None:
        return self.scores.get(self.rows)

    def rank(self) -> tuple:
        score = self.score.estimate if self.score else -math.inf
        return (-self.rows, -score, self.candidate.prompt_chars, self.candidate.id)


@dataclass(frozen=True)
class SearchEvent:
    kind: str  # phase | rung | scored | note
    message: str
    calls: int  # model calls spent so far
    elapsed_s: float
    candidate: int | None = None
    rows: int = 0
    score: Interval | None = None


@dataclass(frozen=True)
class TestReport:
    metric: str
    start: Interval
    winner: Interval
    gain: Interval  # winner - start, paired bootstrap over the same test rows
    better: int  # rows the winner got right and the start wrong (score went up)
    worse: int
    run_id: int


@dataclass
class Prepared:
    """Everything checked before the search runs."""

    config: OptimizeConfig
    start: Template
    start_version: Version
    dataset: Dataset
    variables: dict[str, str]  # template variable -> dataset column
    reference: str
    metric: str
    modes: tuple[str, ...]
    splits: Splits
    notes: list[str]


@dataclass
class SearchResult:
    prepared: Prepared
    standings: list[Standing]
    winner: Standing
    rungs: list[int]
    evaluations: list[Evaluation]
    calls: int  # model calls of the search (pool and dev runs)
    search_s: float  # wall time of the search, the test scoring not included
    stopped: str  # done | budget: model calls | budget: minutes | cancelled
    notes: list[str]
    test: TestReport | None = None
    elapsed_s: float = 0.0  # the whole run, test scoring included

    @property
    def metric(self) -> str:
        return self.prepared.metric

    def table(self) -> list[dict]:
        """One line per candidate, best first: what changed, dev score with interval, cost, fate."""
        return standings_table(self.standings, self.winner)


def standings_table(standings: list[Standing], winner: Standing | None = None) -> list[dict]:
    """The candidates best first; ``winner`` None while the search runs (unscored ones are then waiting)."""
    out = []
    for s in sorted(standings, key=Standing.rank):
        score = s.score
        if s is winner:
            status = "winner"
        elif s.dropped_at:
            status = f"dropped at {s.dropped_at} rows"
        else:
            status = "" if score else ("waiting" if winner is None else "not scored")
        out.append(
            {
                "id": s.candidate.id,
                "changed": s.candidate.changed,
                "mode": s.candidate.mode,
                "examples": s.candidate.shots,
                "dev_rows": s.rows,
                "score": score.estimate if score else None,
                "low": score.low if score else None,
                "high": score.high if score else None,
                "calls": s.calls,
                "status": status,
            }
        )
    return out


# ---- checks before anything runs ---------------------------------------------------------------------------------
def prepare(engine, config: OptimizeConfig, library: TemplateLibrary) -> Prepared:
    """The start template, the model, the dataset and its splits, the metric and the answer modes; bad input
    raises InvalidRequestError here, before any model call."""
    settings, notes = engine.settings, []
    try:
        start, version = load_template(library, config.template)
    except LlmplayError as exc:
        raise InvalidRequestError(f"Cannot start the search: template {config.template!r}: {exc}") from None
    try:
        dataset = load_dataset(settings, config.dataset)
    except DatasetError as exc:
        raise InvalidRequestError(f"Cannot start the search: {exc}") from None
    column = ColumnConfig(template=parse_ref(config.template)[0], model=config.model, template_version=version.number)
    try:
        planned = resolve_column(
            settings, engine, library, 0, column, list(dataset.df.columns), dataset.mapping.variables
        )
    except LlmplayError as exc:
        raise InvalidRequestError(f"Cannot start the search: {exc}") from None
    rows = [dict(zip(dataset.df.columns, r)) for r in dataset.df.itertuples(index=False, name=None)]
    splits = make_splits(
        rows,
        list(planned.variables.values()),
        dataset.mapping.reference,
        config.pool,
        config.dev,
        config.test,
        config.seed,
        dataset=f"Dataset {config.dataset!r}",
    )
    modes = []
    for mode in config.answer_modes:
        if mode == "likelihood" and not start.output.labels:
            notes.append("likelihood mode left out: the template declares no output.labels to rank")
        elif mode == "likelihood" and planned.spec.provider != "local":
            notes.append(f"likelihood mode left out: {config.model} is not a local model")
        else:
            modes.append(mode)
    if not modes:
        raise InvalidRequestError("Cannot start the search: no answer mode applies; " + "; ".join(notes) + ".")
    metric = config.metric or next((m for m in start.metrics if m in PER_ROW), None)
    metric = metric or ("accuracy" if start.output.labels else "exact_match")
    if metric not in default_registry().names():
        raise InvalidRequestError(f"Cannot start the search: unknown metric {metric!r}.")
    if metric in CORPUS_ONLY:
        raise InvalidRequestError(
            f"Cannot start the search: {metric} has no per-row scores to pair; use accuracy or exact_match."
        )
    if config.proposer:
        check_proposer(engine, config.proposer)
    return Prepared(
        config,
        start,
        version,
        dataset,
        planned.variables,
        dataset.mapping.reference or "",
        metric,
        tuple(modes),
        splits,
        notes,
    )


def rung_sizes(dev: int, candidates: int, eta: int, min_rung: int) -> list[int]:
    """Dev rows per rung, smallest first: divide by ``eta`` while more than ``eta`` candidates would be left
    and the subset keeps at least ``min_rung`` rows."""
    sizes, left = [dev], candidates
    while left > eta and math.ceil(sizes[0] / eta) >= min_rung:
        sizes.insert(0, math.ceil(sizes[0] / eta))
        left = math.ceil(left / eta)
    return sizes


def survivors(candidates: int, rung: int, rungs: int, eta: int) -> int:
    """Candidates scored at rung ``rung`` (0-based): all at the first, at most ``eta`` at the last, a steady
    fraction kept in between."""
    if rungs == 1 or rung == 0:
        return candidates
    final = min(eta, candidates)
    return max(1, math.ceil(candidates * (final / candidates) ** (rung / (rungs - 1)) - 1e-9))


# ---- the search ------------------------------------------------------------------------------------------------
class PromptSearch:
    def __init__(
        self,
        engine,
        config: OptimizeConfig,
        library: TemplateLibrary | None = None,
        on_event: Callable[[SearchEvent], None] | None = None,
        cancel: threading.Event | None = None,
    ):
        self.engine, self.config, self.settings = engine, config, engine.settings
        self.library = library or TemplateLibrary.from_settings(self.settings)
        self.on_event = on_event
        self.cancel = cancel or threading.Event()
        self.evaluations: list[Evaluation] = []
        self.calls = 0
        self.stopped = "done"
        self._began = time.monotonic()
        self._phase = ""
        self.standings: list[Standing] = []  # filled in once the candidates are built (live views read it)
        self.rungs: list[int] = []
        self._planned = 0  # model calls the whole search should take, the test report included
        self._done = 0  # model calls of finished evaluations, the test run included
        self._running = 0  # model calls so far of the evaluation in progress

    def run(self, prepared: Prepared | None = None) -> SearchResult:
        """``prepared``: what ``prepare`` returned for this config (the app checks before it starts a job)."""
        p = self.prepared = prepared or prepare(self.engine, self.config, self.library)  # raises before any call
        self._began = time.monotonic()
        self._planned = len(p.splits.pool) * bool(self.config.few_shot or self.config.proposer) + 2 * len(p.splits.test)
        notes: list[str] = []
        for note in p.notes:
            self._note(notes, note)
        self.scratch_name, self.scratch = self._scratch_library(p.start.name)
        # Whole batches: a search's runs are small and many, and on CPU a batch decodes its rows' few tokens together
        # (one row at a time, each row pays every decoding step: measured 2-3x slower here); cancel and the minutes
        # budget are checked between batches.
        self.runner = EvalRunner(self.engine, self.scratch, chunk_size=self.settings.max_batch_size)
        self._event("phase", f"splits: {p.splits.describe()}; metric {p.metric}")

        start_version = self._save_candidate(Candidate(0, p.start, "start template"))
        c = self.config
        # The pool run: which rows the start answers right (few-shot sets), and wrong (what the proposer reads).
        correct, wrong = self._bootstrap(start_version) if c.few_shot or (c.proposer and p.splits.pool) else ([], [])
        if c.few_shot and not correct:
            self._note(notes, "few-shot examples left out: the pool run did not fit the budget or was stopped")
        instructions = space.instruction_variants(p.start) if c.instruction_edits else [(p.start, "")]
        if c.proposer:
            instructions += self._propose(wrong, notes)
        examples: list = [(None, "")]
        pool = [self._row(i) for i in p.splits.pool]
        if correct:
            examples = space.example_variants(
                p.start, pool, correct, p.variables, p.reference, c.max_examples, c.example_sets, c.seed
            )
        if c.retrieved:
            examples += space.retrieved_variants(p.start, pool, p.variables, p.reference, c.max_examples)
        found, cut = space.build_candidates(p.start, instructions, examples, p.modes, self.config.max_candidates)
        if cut:
            self._note(notes, f"{cut} candidates left out (search.max_candidates is {self.config.max_candidates})")
        standings = [Standing(x, start_version if x.id == 0 else self._save_candidate(x)) for x in found]
        rungs = rung_sizes(len(p.splits.dev), len(standings), self.config.eta, self.config.min_rung)
        self.standings, self.rungs = standings, rungs
        self._planned += sum(
            survivors(len(standings), r, len(rungs), self.config.eta) * (size - (rungs[r - 1] if r else 0))
            for r, size in enumerate(rungs)
        )
        self._event("phase", f"{len(standings)} candidates")

        self._halving(standings, rungs)
        scored = [s for s in standings if s.score is not None]
        winner = min(scored, key=Standing.rank) if scored else standings[0]
        if not scored:
            self._note(notes, "no candidate was scored on dev rows within the budget: the start template stands")
        search_s = time.monotonic() - self._began
        result = SearchResult(p, standings, winner, rungs, self.evaluations, self.calls, search_s, self.stopped, notes)
        if self.stopped != "cancelled":
            result.test = self._test(standings[0], winner)
        result.elapsed_s = time.monotonic() - self._began
        return result

    # ---- phases --------------------------------------------------------------------------------------------
    def _bootstrap(self, start_version: int) -> tuple[list[bool], list[WrongRow]]:
        """Which pool rows the start template answers correctly (the few-shot examples come from them first), and
        the ones it gets wrong with its answers (what a proposer reads)."""
        p = self.prepared
        pool = p.splits.pool
        if not self._fits(len(pool)):
            return [], []
        self._event("phase", f"bootstrap: the start template on {len(pool)} pool rows")
        results = self._evaluate("pool", "pool", pool, [(0, start_version, "start")])
        if results is None:
            return [], []
        scores, _ = _row_scores(results, 0, p.metric)
        wrong = []
        for r, index in enumerate(pool):
            if scores[r] < 1.0:
                row, cell = self._row(index), results.cells.get((r, 0))
                values = {var: str(row.get(col, "")) for var, col in p.variables.items()}
                answer = cell.answer if cell is not None and cell.error is None else None
                wrong.append(WrongRow(values, str(row.get(p.reference, "")), answer))
        return [s >= 1.0 for s in scores], wrong

    def _propose(self, wrong: list[WrongRow], notes: list[str]) -> list:
        """Instructions from the proposer model (its calls count against the budget); failures are notes."""
        c = self.config
        if not self._fits(c.proposals):
            self._note(notes, "proposer not asked: the budget was spent")
            return []
        self._event("phase", f"proposer {c.proposer}: {c.proposals} instructions asked ({len(wrong)} wrong pool rows)")
        proposals, said = propose_instructions(self.engine, c.proposer, self.prepared.start, wrong, c.proposals, c.seed)
        self.calls += c.proposals
        self._done += c.proposals
        self._planned += c.proposals
        for note in said:
            self._note(notes, note)
        return proposals

    def _halving(self, standings: list[Standing], rungs: list[int]) -> None:
        dev, alive = self.prepared.splits.dev, list(standings)
        for r, size in enumerate(rungs):
            alive = alive[: survivors(len(standings), r, len(rungs), self.config.eta)]
            self._event("rung", f"rung {r + 1}/{len(rungs)}: {len(alive)} candidates on {size} dev rows", rows=size)
            for s in alive:
                if not self._fits(size - s.rows):
                    return
                results = self._evaluate("dev", f"dev{size}", dev[:size], [(s.candidate.id, s.version, "candidate")])
                if results is None:
                    return
                scores, failed = _row_scores(results, 0, self.prepared.metric)
                s.scores[size], s.failed = bootstrap_mean(scores), failed
                s.calls += self.evaluations[-1].calls
                self._scored(s, size)
            ranked = sorted(alive, key=Standing.rank)
            keep = survivors(len(standings), r + 1, len(rungs), self.config.eta) if r + 1 < len(rungs) else len(ranked)
            for s in ranked[keep:]:
                s.dropped_at = size
            alive = ranked

    def _test(self, start: Standing, winner: Standing) -> TestReport | None:
        """The start template and the winner on the test rows, once, paired."""
        test = self.prepared.splits.test
        self._phase = "test"
        self._event("phase", f"test: start and winner on {len(test)} held-out rows")
        columns = [(start.candidate.id, start.version, "start"), (winner.candidate.id, winner.version, "winner")]
        results = self._evaluate("test", "test", test, columns)
        if results is None:
            return None
        metric = self.prepared.metric
        a, _ = _row_scores(results, 0, metric)
        b, _ = _row_scores(results, 1, metric)
        diff = paired_bootstrap(a, b)
        return TestReport(
            metric,
            bootstrap_mean(a),
            bootstrap_mean(b),
            diff.interval,
            len(diff.better),
            len(diff.worse),
            self.evaluations[-1].run_id,
        )

    # ---- evaluation runs -----------------------------------------------------------------------------------
    def _evaluate(self, phase: str, part: str, rows, columns: list[tuple[int, int, str]]) -> RunResults | None:
        """One evaluation run of candidate versions on split rows; None when it was stopped (not ranked)."""
        p = self.prepared
        self._phase = phase
        dataset = self._split_dataset(part, tuple(rows))
        params = GenerationParams(max_new_tokens=self.config.max_new_tokens)
        config = RunConfig(
            dataset=dataset,
            columns=tuple(
                ColumnConfig(
                    self.scratch_name,
                    self.config.model,
                    params=params,
                    template_version=version,
                    label=f"{label} #{cid}",
                    backend=REFERENCE,  # candidates are compared in one precision, whatever their prompts' shape
                )
                for cid, version, label in columns
            ),
            metrics=(MetricConfig(p.metric),),
            name=f"optimize {phase}: {p.start.name} · {self.config.model}",
        )
        run_id = self.runner.run(config, on_progress=self._watch)
        info = get_run(self.settings, run_id)
        self._done, self._running = self._done + info.generated_cells, 0
        if phase != "test":
            self.calls += info.generated_cells
        self.evaluations.append(
            Evaluation(run_id, phase, dataset, tuple(rows), tuple(c[0] for c in columns), info.generated_cells)
        )
        if info.status == "cancelled":
            return None
        if info.status != "done":
            raise ProviderError(f"Evaluation run #{run_id} {info.status}: {info.error or 'no reason given'}")
        if info.total_cells and info.failed_cells == info.total_cells:
            results = load_results(self.settings, run_id)
            error = next((c.error for c in results.cells.values() if c.error), "")
            raise ProviderError(f"Every cell of evaluation run #{run_id} failed: {error}")
        return load_results(self.settings, run_id)

    def _watch(self, progress) -> None:
        """Between chunks of a run: stop it on cancel, or past the minutes budget (a search run only)."""
        if progress.finished:
            return
        self._running = progress.generated
        if self.cancel.is_set():
            self.stopped = "cancelled"
            self.runner.cancel(progress.run_id)
        elif self._phase != "test" and self._past_deadline():
            self.stopped = "budget: minutes"
            self.runner.cancel(progress.run_id)

    def _fits(self, calls: int) -> bool:
        """Whether an evaluation of at most ``calls`` uncached cells may start; sets ``stopped`` if not."""
        if self.cancel.is_set():
            self.stopped = "cancelled"
        elif self._past_deadline(calls):
            self.stopped = "budget: minutes"
        elif self.config.budget_calls is not None and self.calls + calls > self.config.budget_calls:
            self.stopped = "budget: model calls"
        else:
            return True
        self._event("note", f"stopped: {self.stopped}")
        return False

    def _past_deadline(self, calls: int = 0) -> bool:
        """Past the minutes budget, or would be after ``calls`` more at the pace so far: an evaluation stopped at
        the deadline is not ranked, so one that cannot finish in time is not started."""
        minutes = self.config.budget_minutes
        if minutes is not None and calls and self.calls:
            elapsed = time.monotonic() - self._began
            return elapsed + calls * elapsed / self.calls > minutes * 60
        return minutes is not None and time.monotonic() - self._began > minutes * 60

    # ---- storage ---------------------------------------------------------------------------------------------
    def _row(self, index: int) -> dict:
        return {c: self.prepared.dataset.df.iat[index, k] for k, c in enumerate(self.prepared.dataset.df.columns)}

    def _split_dataset(self, part: str, rows: tuple[int, ...]) -> str:
        """Save these rows (inputs and reference only) as a dataset the runner can read; same rows, same name."""
        p = self.prepared
        columns = list(dict.fromkeys([*p.variables.values(), p.reference]))
        # the digest names these rows of this content with these columns: a name never meets other content
        name = f"opt-{p.splits.digest(p.dataset.info.content_hash + repr(columns))}-{part}"
        frame = pd.DataFrame(p.dataset.df.iloc[list(rows)][columns].to_numpy(), columns=columns, dtype=object)
        source = f"optimize split of {p.dataset.name} (seed {p.splits.seed}): {part}"
        save_dataset(self.settings, name, frame, ColumnMapping(dict(p.variables), p.reference), source=source)
        return name

    def _scratch_library(self, start: str) -> tuple[str, TemplateLibrary]:
        """Where candidates are saved: a folder of its own, and a name no team template has (the versions
        table is shared, and another template's history must not get candidates in it)."""
        taken = set(self.library.names())
        base = f"{start[:50]}{SCRATCH}"
        name = next(n for n in (base, *(f"{base}-{i}" for i in range(2, 100))) if n not in taken)
        return name, TemplateLibrary(self.settings.data_dir / "optimize" / "candidates", self.settings.db_path)

    def _save_candidate(self, candidate: Candidate) -> int:
        saved = self.scratch.save(
            replace(candidate.template, name=self.scratch_name),
            message=f"optimize candidate #{candidate.id}: {candidate.changed}",
            author="llmplay optimize",
        )
        return saved.version.number

    # ---- progress --------------------------------------------------------------------------------------------
    def work(self) -> tuple[int, int]:
        """(model calls made, model calls planned) for the whole search, its test report included: the plan is
        known once the candidates are (during the pool run it counts the pool and the test rows only); cells from
        the cache are neither made nor planned."""
        done = self._done + self._running
        return done, max(done, self._planned)

    def _scored(self, s: Standing, size: int) -> None:
        score = s.scores[size]
        failed = f", {s.failed} failed rows scored 0" if s.failed else ""
        message = (
            f"#{s.candidate.id} {s.candidate.changed} [{s.candidate.mode}]: {self.prepared.metric} "
            f"{score.estimate:.3f} [{score.low:.3f}, {score.high:.3f}] on {size} dev rows{failed}"
        )
        self._event("scored", message, candidate=s.candidate.id, rows=size, score=score)

    def _note(self, notes: list[str], note: str) -> None:
        notes.append(note)
        self._event("note", note)

    def _event(self, kind: str, message: str, **extra) -> None:
        if self.on_event:
            self.on_event(SearchEvent(kind, message, self.calls, time.monotonic() - self._began, **extra))


def run_search(engine, config: OptimizeConfig, library: TemplateLibrary | None = None, **kwargs) -> SearchResult:
    return PromptSearch(engine, config, library, **kwargs).run()


def _row_scores(results: RunResults, column: int, metric: str) -> tuple[list[float], int]:
    """Per-row scores of one column in row order, a failed row as 0; and how many failed."""
    scores, failed, seen = [], 0, False
    for r in range(len(results.rows)):
        cell = results.cells.get((r, column))
        value = cell.scores.get(metric) if cell is not None and cell.error is None else None
        failed += cell is None or cell.error is not None
        seen = seen or value is not None
        scores.append(float(value) if value is not None else 0.0)
    if not seen and failed < len(scores):
        raise InvalidRequestError(f"Metric {metric!r} gives no per-row scores; choose accuracy or exact_match.")
    return scores, failed
