"""The Arena tab (blind battles between two anonymous models) and the Leaderboard tab (ratings from the votes).

A battle draws two contestants from the chosen pool (favouring the pair whose order the current ratings are
least sure of), puts them in random positions A and B, and streams both replies side by side. Nothing the
browser receives before the vote names a model: the battle's identities stay in SQLite (``arena_battles``)
and the browser holds only the battle's random id. The vote reveals them; a vote cast after the reveal is
stored but not counted. A decided vote can go to the feedback queue 'preferences' as a pair, and either reply
can get a corrected answer.

API endpoints (gradio_client and scripts)
-----------------------------------------
``/arena_battle`` streams updates ``(battle_id, reply_a, reply_b, status)``. Inputs, in this order (or by
these keyword names):

 1. ``models`` (list of str): the pool, at least two catalog names; ``"name+/path/to/adapter"`` enters a
    local model with a LoRA adapter as its own contestant.
 2. ``prompt`` (str): the input. With a template: a JSON object of the template's variables, or plain text
    for its main variable (the first required one); blank = the defaults.
 3. ``template`` (str): a template's name; ``""`` = the free prompt.
 4. ``user`` (str): who is voting (recorded with the battle and its votes); ``""`` = anonymous.
 5. ``max_new_tokens`` (int), 6. ``temperature`` (float, 0 = greedy, the default).

``status`` is Markdown: progress, ``"✅ ..."`` once both replies are in (the battle can be voted on), or
``"⚠️ Error: ..."``, in which case ``battle_id`` is ``""``. A side that fails voids the battle; only then
does the error say which model failed. No output names a model before the vote.

``/arena_vote``: ``(battle_id, winner, user) -> dict``; ``winner`` is ``a``, ``b``, ``tie`` or ``both_bad``.
The dict: ``vote_id``, ``battle_id``, ``winner``, ``counted`` (False when the identities were already shown),
``a`` and ``b`` (``{"model", "adapter", "template_version_id"}``), ``message`` (Markdown: the reveal and
whether the vote counted) and ``error`` (``"⚠️ Error: ..."`` or ``None``).

``/arena_preference``: ``(vote_id, user) -> str``: send a decided vote to the feedback queue
``preferences`` as a preferred/rejected pair (the voter's response 'a'). Only the caller's own votes (any
vote for an admin) can be sent; the replies are the stored battle's (llmplay/feedback/provenance.py).
``/arena_correction``: ``(vote_id, side, correction, user) -> str``: send the answer reply ``side``
(``a`` | ``b``) should have been to the queue ``inbox``. Both return ``"✅ ..."`` or ``"⚠️ Error: ..."``.

``/leaderboard``: ``(template, since, until) -> dict``; ``template`` ``""`` = all votes; ``since`` and
``until`` are dates (``2025-03-01``, both days included) or ISO times (``until`` exclusive), ``""`` = open.
The dict: ``rows`` (best first: ``rank``, ``model``, ``rating``, ``95% interval``, ``battles``, ``wins``,
``losses``, ``ties``), ``models`` (matrix order), ``win_rate`` (``[i][j]``: share of i's battles against j
that i won, ties half; ``None`` where they never met), ``battles`` (``[i][j]``), ``votes`` (counted votes
used), ``templates`` (templates that have votes) and ``error``.

Every handler returns errors as data; none raises, so the app keeps serving.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import closing
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import gradio as gr

from llmplay.arena import (
    Battle,
    Contestant,
    cast_vote,
    comparisons,
    draw_battle,
    fit_bradley_terry,
    list_votes,
    reveal,
    save_battle,
    set_outputs,
    vote_templates,
)
from llmplay.arena import leaderboard as rate
from llmplay.compare import Column, ColumnConfig, stream_columns
from llmplay.engine import Engine, GenerationParams, GenerationResult
from llmplay.errors import InvalidRequestError, LlmplayError
from llmplay.feedback.provenance import Sender, sender_for
from llmplay.feedback.sources import correction_from_vote, preference_from_vote
from llmplay.models import sources
from llmplay.models.catalog import is_version_label
from llmplay.pacing import Pacer
from llmplay.services import Services
from llmplay.store import connect
from llmplay.templates import (
    Template,
    TemplateLibrary,
    build_messages,
    build_request,
    load_template,
    request_from_messages,
)
from llmplay.ui import fields
from llmplay.ui.access import Guard, declare, declared
from llmplay.ui.common import format_error, send_feedback
from llmplay.ui.decoding import parse_params
from llmplay.ui.models_panel import TEXT_KINDS, generative_names, offer_kinds
from llmplay.ui.queueing import GENERATION
from llmplay.ui.refresh import VOTES, bump
from llmplay.ui.template_picks import parse_values, template_choices

log = logging.getLogger(__name__)

NO_TEMPLATE = "(none — free prompt)"
VERDICTS = {"a": "A is better", "b": "B is better", "tie": "Tie", "both_bad": "Both are bad"}
READY = "✅ Both replies are in. Which one is better? Your vote reveals the models."
DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# ---- plain helpers (no gradio state) --------------------------------------------------------------
def parse_contestant(entry: str) -> Contestant:
    """``"model"``, a trained version's label (``"base + name vN"``) or ``"model+adapter folder"``: model names
    never contain '+', so the split is unambiguous."""
    if is_version_label((entry or "").strip()):
        return Contestant(entry.strip(), None)
    model, _, adapter = (entry or "").strip().partition("+")
    return Contestant(model.strip(), adapter.strip() or None)


def main_variable(template: Template) -> str | None:
    """The variable plain text fills: the first required one, else the first one."""
    required = [v.name for v in template.variables if v.required]
    return (required or template.variable_names() or [None])[0]


def template_values(template: Template, text: str) -> dict:
    """Variable values from the input box: a JSON object as is, other text for the main variable."""
    text = (text or "").strip()
    if text.startswith("{"):
        return parse_values(text)
    if not text:
        return {}
    name = main_variable(template)
    if name is None:
        raise InvalidRequestError(f"Template {template.name!r} has no variables; leave the input empty.")
    return {name: text}


def until_value(text: str | None) -> str | None:
    """A date-only ``until`` includes that day (list_votes' bound is exclusive)."""
    text = (text or "").strip()
    if DATE_ONLY.match(text):
        try:
            return (date.fromisoformat(text) + timedelta(days=1)).isoformat()
        except ValueError:
            return text  # list_votes explains what is wrong with it
    return text or None


def model_version(engine: Engine, model: str) -> str | None:
    """A fingerprint of the weights, stored with the vote: the converted-cache key (package version or file
    size/mtime) for local models, the served model at its URL for endpoints."""
    try:
        spec = engine.catalog.get(model)
        if spec.source == "endpoint":
            return f"{spec.api_model or spec.name}@{spec.location}"
        return sources.cache_key(spec, engine.models.weights(spec))
    except Exception:  # a version is nice to have; the model's own load reports real problems
        return None


def reveal_message(winner: str, a: dict, b: dict, counted: bool, message: str) -> str:
    def name(side: dict) -> str:
        return f"`{side['model']}`" + (f" + adapter `{side['adapter']}`" if side.get("adapter") else "")

    head = f"**Model A** was {name(a)} · **Model B** was {name(b)} · your vote: **{VERDICTS[winner]}**"
    return f"{head}  \n{'✅' if counted else 'ℹ️'} {message}"


def vote_failure(battle_id: str, winner: str, message: str) -> dict:
    error = format_error(message)
    empty = {"vote_id": None, "counted": False, "a": None, "b": None}
    return empty | {"battle_id": battle_id, "winner": winner, "message": error, "error": error}


def leaderboard_failure(message: str) -> dict:
    empty = {"rows": [], "models": [], "win_rate": [], "battles": [], "votes": 0, "templates": []}
    return empty | {"error": format_error(message)}


# ---- handlers ---------------------------------------------------------------------------------------
class ArenaTab:
    """The Arena and Leaderboard handlers: plain values in, plain values out; exceptions never escape."""

    def __init__(self, engine: Engine, library: TemplateLibrary, resamples: int = 1000):
        self.engine = engine
        self.library = library
        self.resamples = resamples  # bootstrap resamples behind the leaderboard's intervals

    @property
    def db_path(self) -> Path:
        return self.engine.settings.db_path

    # ---- battles ------------------------------------------------------------------------------------
    def battle(
        self,
        models: list[str] | None,
        prompt: str = "",
        template: str = "",
        user: str = "",
        max_new_tokens: int = 256,
        temperature: float = 0.0,
    ) -> Iterator[tuple[str, str, str, str]]:
        """Draw a pair from ``models``, generate both replies and stream ``(battle_id, a, b, status)``."""
        try:
            params = parse_params(max_new_tokens, temperature, 1.0, 0, 1.0, None, "", settings=self.engine.settings)
            battle, columns = self._prepare(list(models or []), prompt, (template or "").strip(), user, params)
            yield battle.id, "", "", "⏳ Two models were drawn; starting both…"
            yield from self._run(battle, columns)
        except LlmplayError as exc:
            yield "", "", "", format_error(str(exc))
        except Exception as exc:  # never let a handler fail: the app must keep serving
            log.exception("Arena battle failed")
            yield "", "", "", format_error(f"something unexpected went wrong ({type(exc).__name__}: {exc}).")

    def _prepare(
        self, models: list[str], prompt: str, template: str, user: str, params: GenerationParams
    ) -> tuple[Battle, list[Column]]:
        """Draw and save the battle, and build each side's request (checked before anything loads)."""
        pool = [parse_contestant(m) for m in models if (m or "").strip()]
        for c in pool:  # check the whole pool, so an error cannot hint at which pair was drawn
            if self.engine.catalog.get(c.model).kind not in ("chat", "base"):  # unknown names fail here too
                raise InvalidRequestError(f"{c.model!r} is an embeddings model; it cannot write replies.")
            self.engine.provider(c.model, None, c.adapter)  # e.g. an adapter on an endpoint model
        loaded, values, version_id, input_ = None, None, None, prompt
        if template:
            loaded, version = load_template(self.library, template)  # name, or name@vN (a saved version)
            values = template_values(loaded, prompt)
            input_ = build_messages(loaded, values)  # model-independent: what feedback items keep
            version_id = version.id
        with connect(self.db_path) as db:
            fit = fit_bradley_terry(comparisons(list_votes(db, template=template or None)))
        battle = draw_battle(
            pool,
            input_,
            fit=fit,
            template=template or None,
            template_version_id=version_id,
            params=params.to_dict(),
            user=(user or "").strip() or None,
        )
        battle.a, battle.b = (self._versioned(c) for c in (battle.a, battle.b))
        columns = [self._column(c, prompt, loaded, values, params) for c in (battle.a, battle.b)]
        with connect(self.db_path) as db:
            return save_battle(db, battle), columns

    def _versioned(self, c: Contestant) -> Contestant:
        return Contestant(c.model, c.adapter, c.template_version_id, model_version(self.engine, c.model))

    def _column(
        self, c: Contestant, prompt: str, template: Template | None, values: dict | None, params: GenerationParams
    ) -> Column:
        spec = self.engine.catalog.get(c.model)
        if template is None:
            request = request_from_messages(spec.kind, [{"role": "user", "content": prompt}], params)
        else:
            request = build_request(template, spec.kind, values, params)[0]
        self.engine.provider(c.model, None, c.adapter).check_request(request)
        return Column(ColumnConfig(model=c.model, params=params, adapter=c.adapter), request)

    def _run(self, battle: Battle, columns: list[Column]) -> Iterator[tuple[str, str, str, str]]:
        """Both sides in parallel threads. The engine's loading messages name the model, so they are not shown."""
        for status in self._load(battle):
            yield battle.id, "", "", status
        texts, results = ["", ""], [None, None]
        status, pacer = "✍️ Both models are writing…", Pacer()
        with closing(stream_columns(self.engine, columns)) as events:
            for index, event in events:
                if event.done:
                    results[index] = event.result
                elif event.delta:
                    texts[index] += event.delta
                if pacer.due():
                    yield battle.id, texts[0], texts[1], status
        a, b = results
        if not (a and a.ok and b and b.ok):
            raise self._void(battle, a, b)
        with connect(self.db_path) as db:
            set_outputs(db, battle.id, a.text, b.text)
        yield battle.id, a.text, b.text, READY

    def _load(self, battle: Battle) -> Iterator[str]:
        """Load the sides one after another before they generate in parallel: two models loading at once in
        one process break each other (transformers' loading is not thread-safe: "meta tensor" errors)."""
        for label, c in (("A", battle.a), ("B", battle.b)):
            provider = self.engine.provider(c.model, None, c.adapter)
            if not hasattr(provider, "load"):
                continue  # endpoints have nothing to load
            if not self.engine.models.is_loaded(provider.spec, provider.dtype, provider.adapter):
                yield "⏳ Loading the models (the first battle with a model takes a while)…"
            try:
                provider.load()
            except LlmplayError as exc:
                with connect(self.db_path) as db:
                    reveal(db, battle.id)
                raise LlmplayError(f"Model {label} ({c.model}) could not load: {exc} This battle is void.") from exc

    def _void(self, battle: Battle, a: GenerationResult | None, b: GenerationResult | None) -> LlmplayError:
        """A failed side voids the battle: reveal it (so no vote on it can count); the error says who failed."""
        with connect(self.db_path) as db:
            reveal(db, battle.id)
        failed = [
            f"Reply {side} ({c.model}) failed: {r.error if r else 'no result'}"
            for side, c, r in (("A", battle.a, a), ("B", battle.b, b))
            if not (r and r.ok)
        ]
        return LlmplayError("; ".join(failed) + ". This battle is void; start a new one.")

    # ---- votes and feedback ---------------------------------------------------------------------------
    def vote(self, battle_id: str, winner: str, user: str = "") -> dict:
        """Cast a vote; the answer reveals both models and says whether the vote counted."""
        try:
            with connect(self.db_path) as db:
                result = cast_vote(db, (battle_id or "").strip(), winner, (user or "").strip() or None)
            a, b = result.battle.a.describe(), result.battle.b.describe()
            return {
                "vote_id": result.vote.id,
                "battle_id": result.battle.id,
                "winner": winner,
                "counted": result.counted,
                "a": a,
                "b": b,
                "message": reveal_message(winner, a, b, result.counted, result.message),
                "error": None,
            }
        except LlmplayError as exc:
            return vote_failure(battle_id, winner, str(exc))
        except Exception as exc:
            log.exception("Arena vote failed")
            return vote_failure(battle_id, winner, f"could not record the vote ({type(exc).__name__}: {exc}).")

    def send_preference(self, vote_id: int | None, user: str = "") -> str:
        """Send the caller's decided vote (A or B better) to the feedback queue 'preferences' as a pair."""
        return self._to_inbox(lambda db: preference_from_vote(db, self._vote_id(vote_id), self._sender(user)))

    def send_correction(self, vote_id: int | None, side: str, correction: str, user: str = "") -> str:
        """Send the answer that reply ``side`` ('a' or 'b') of the caller's vote should have been to 'inbox'."""
        side = (side or "").strip().lower()
        return self._to_inbox(
            lambda db: correction_from_vote(db, self._vote_id(vote_id), side, correction, self._sender(user))
        )

    def _sender(self, user: str) -> Sender:
        return sender_for(self.engine.settings, user)

    @staticmethod
    def _vote_id(vote_id) -> int:
        if vote_id in (None, ""):
            raise InvalidRequestError("Vote first: feedback goes with a vote.")
        return vote_id  # checked, with its owner, by the feedback layer (llmplay/feedback/provenance.py)

    def _to_inbox(self, send) -> str:
        return send_feedback(self.db_path, send, "arena")

    # ---- leaderboard ---------------------------------------------------------------------------------
    @declare("view")
    def leaderboard(self, template: str = "", since: str = "", until: str = "") -> dict:
        """Bradley-Terry ratings with bootstrap intervals and the win-rate matrix of the counted votes."""
        try:
            with connect(self.db_path) as db:
                votes = list_votes(db, template=(template or "").strip() or None, since=since, until=until_value(until))
                templates = vote_templates(db)
            board = rate(comparisons(votes), resamples=self.resamples)
            return {
                "rows": board.table(),
                "models": board.keys,
                "win_rate": board.win_rate,
                "battles": board.battles,
                "votes": board.votes,
                "templates": sorted(templates),
                "error": None,
            }
        except LlmplayError as exc:
            return leaderboard_failure(str(exc))
        except Exception as exc:
            log.exception("Leaderboard failed")
            return leaderboard_failure(f"could not rate the votes ({type(exc).__name__}: {exc}).")

    def template_choices(self) -> list[tuple[str, str]]:
        return template_choices(self.library, NO_TEMPLATE)

    @declare("view")
    def input_hint(self, template: str) -> str:
        if not template:
            return "Both models get this prompt as it is (chat models as a user message)."
        try:
            loaded = load_template(self.library, template)[0]
        except LlmplayError as exc:
            return format_error(str(exc))
        names = ", ".join(f"`{n}`" for n in loaded.variable_names()) or "none"
        main = main_variable(loaded)
        text = f"plain text fills `{main}`; " if main else ""
        return f"Template variables: {names}. Input: {text}or a JSON object of values; blank = the defaults."


# ---- layout: Arena ----------------------------------------------------------------------------------
def default_pool(engine: Engine) -> list[str]:
    """The pool a battle draws from unless the user picks: chat models only, as Chatbot Arena pools them. A base
    model (e.g. gemma-3-270m) continues the prompt instead of answering it, so its battles are one-sided and
    slow; it joins by choice (the pool picker or "Include base models"), or while fewer than two chat models
    exist (the bundled catalog has one: a battle needs two), which the tab says."""
    chats = generative_names(engine, ("chat",))
    return chats if len(chats) >= 2 else generative_names(engine, TEXT_KINDS)


def pool_note(engine: Engine) -> str:
    chats = generative_names(engine, ("chat",))
    if len(chats) >= 2:
        return ""
    return (
        f"ℹ️ Only {len(chats)} chat model here, and a battle needs two, so the base models are in the pool: they "
        "continue the prompt rather than answer it. Add a chat model (Playground ▸ Add a model) or train a version "
        "of one to pool chat models only."
    )


def _pool_dropdown(engine: Engine, selected: list[str] | None) -> gr.Dropdown:
    names = generative_names(engine, TEXT_KINDS)
    kept = [m for m in selected or [] if parse_contestant(m).model in names]
    return gr.Dropdown(choices=names, value=kept or default_pool(engine))


def _with_base_models(engine: Engine, include: bool, selected: list[str] | None) -> gr.Dropdown:
    """The pool with every base model added (``include``) or taken out."""
    base = set(generative_names(engine, ("base",)))
    chosen = [m for m in selected or [] if parse_contestant(m).model not in base]
    return gr.Dropdown(value=chosen + sorted(base) if include else chosen, allow_custom_value=True)  # as the pool


@declare("view")
def _votes_enabled(battle_id: str, status: str) -> list[gr.Button]:
    ready = bool(battle_id) and (status or "").startswith("✅")
    return [gr.Button(interactive=ready)] * len(VERDICTS)


def build_arena_tab(services: Services, demo: gr.Blocks) -> ArenaTab:
    """Lay out the Arena inside the current Blocks context and wire its events."""
    engine = services.engine
    tab = ArenaTab(engine, services.templates)
    limit = engine.settings.max_new_tokens_limit
    names = generative_names(engine, TEXT_KINDS)  # contestants write replies: no classifiers or taggers
    gr.Markdown(
        "Two anonymous models answer the same input. Vote for the better reply; the vote reveals who was who. "
        "Only votes cast before the reveal count towards the Leaderboard."
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            pool = gr.Dropdown(
                names,
                value=default_pool(engine),
                multiselect=True,
                allow_custom_value=True,  # "model+adapter folder" entries; the engine reports unknown names
                label="Pool (battles draw two of these; pairs whose order is least certain come up more often)",
                elem_id="arena-pool",
            )
            offer_kinds(pool, TEXT_KINDS)
            with_base = gr.Checkbox(
                bool(pool_note(engine)),
                label="Include base models",
                info="Chat models only by default: a base model continues the prompt instead of answering it.",
                elem_id="arena-include-base",
            )
            gr.Markdown(pool_note(engine), elem_id="arena-pool-note")
            template = gr.Dropdown(tab.template_choices(), value="", label="Template", allow_custom_value=True)
            prompt = gr.Textbox(
                label="Input", lines=3, max_lines=12, placeholder="Ask both models something", elem_id="arena-prompt"
            )
            hint = gr.Markdown(tab.input_hint(""))
        with gr.Column(scale=1, min_width=240):
            user = gr.Textbox("", label="Your name (recorded with your votes)", placeholder="anonymous")
            max_new_tokens = fields.number(
                "max_new_tokens",
                min(256, limit),
                engine.settings,
                label=f"Max new tokens (1–{limit})",
                elem_id="arena-max-new-tokens",
            )
            temperature = fields.slider("temperature", 0, step=0.05, label="Temperature (0 = greedy)")
    with gr.Row():
        start = gr.Button("New battle", variant="primary", elem_id="arena-start")
        stop = gr.Button("Stop")
    status = gr.Markdown(elem_id="arena-status")
    battle_id = gr.Textbox("", label="Battle", visible="hidden", elem_id="arena-battle-id")
    with gr.Row(equal_height=True):
        reply_a = gr.Textbox(
            label="Model A", lines=10, max_lines=30, interactive=False, buttons=["copy"], elem_id="arena-a"
        )
        reply_b = gr.Textbox(
            label="Model B", lines=10, max_lines=30, interactive=False, buttons=["copy"], elem_id="arena-b"
        )
    with gr.Row():
        buttons = {w: gr.Button(label, interactive=False, elem_id=f"arena-vote-{w}") for w, label in VERDICTS.items()}
    revealed = gr.Markdown(elem_id="arena-reveal")
    vote_id = gr.State(None)  # server-side; the vote's id, for the feedback buttons
    with gr.Group(visible=False) as feedback:
        gr.Markdown("**Teach the models** — send this battle to the feedback queues ('preferences', 'inbox'):")
        preference = gr.Button(
            "Send as preference pair (the reply you voted for is preferred)", size="sm", elem_id="arena-prefer"
        )
        with gr.Row():
            side = gr.Radio([("Reply A", "a"), ("Reply B", "b")], value="a", label="Correct reply", scale=1)
            correction = gr.Textbox(label="The correct answer", lines=2, scale=3)
        send_correction = gr.Button("Send correction", size="sm")
        feedback_status = gr.Markdown(elem_id="arena-feedback-status")

    private = {"api_visibility": "private"}
    guard = Guard(engine.settings)  # battles spend model time, votes are viewers', corrections labelers'
    prefer = guard("vote", "send preference pairs", tab.send_preference, user_param="user")
    correct = guard("label", "send corrections", tab.send_correction, user_param="user")
    gr.api(guard("vote", "vote in the arena", tab.vote, user_param="user"), api_name="arena_vote")
    gr.api(prefer, api_name="arena_preference")
    gr.api(correct, api_name="arena_correction")

    @declare("view")
    def reset() -> list:
        off = [gr.Button(interactive=False)] * len(VERDICTS)
        return [
            "",
            None,
            gr.Group(visible=False),
            "",
            "",
            gr.Textbox(label="Model A"),
            gr.Textbox(label="Model B"),
            *off,
        ]

    reset_outputs = [revealed, vote_id, feedback, feedback_status, correction, reply_a, reply_b, *buttons.values()]
    cleared = start.click(reset, None, reset_outputs, show_progress="hidden", **private)
    running = cleared.then(
        guard("generate", "start arena battles", tab.battle, user_param="user"),
        [pool, prompt, template, user, max_new_tokens, temperature],
        [battle_id, reply_a, reply_b, status],
        api_name="arena_battle",
        show_progress="minimal",
        **GENERATION,
    )
    running.then(_votes_enabled, [battle_id, status], list(buttons.values()), **private)
    stop.click(declared("view", lambda: "⏹️ Stopped."), None, status, cancels=[running], **private)

    def on_vote(winner: str, battle: str, voter: str) -> list:
        result = tab.vote(battle, winner, voter)
        if result["error"]:
            return [result["error"], gr.skip(), gr.skip(), gr.skip(), gr.skip(), *[gr.skip()] * len(VERDICTS)]
        a, b = result["a"]["model"], result["b"]["model"]
        off = [gr.Button(interactive=False)] * len(VERDICTS)
        labels = [gr.Textbox(label=f"Model A: {a}"), gr.Textbox(label=f"Model B: {b}")]
        return [result["message"], result["vote_id"], gr.Group(visible=True), *labels, *off]

    vote_outputs = [revealed, vote_id, feedback, reply_a, reply_b, *buttons.values()]
    for winner, button in buttons.items():
        voted = button.click(
            guard("vote", "vote in the arena", partial(on_vote, winner), user_param="voter"),
            [battle_id, user],
            vote_outputs,
            show_progress="hidden",
            **private,
        )
        bump(demo, VOTES, voted)  # the Leaderboard counts it at once
    preference.click(prefer, [vote_id, user], feedback_status, **private)
    send_correction.click(correct, [vote_id, side, correction, user], feedback_status, **private)
    template.change(tab.input_hint, template, hint, **private)
    with_base.input(declared("view", partial(_with_base_models, engine)), [with_base, pool], pool, **private)
    # Models added in another tab (or session) join the pool's choices after a reload.
    demo.load(declared("view", partial(_pool_dropdown, engine)), pool, pool, **private)
    return tab
