"""Row sampling, and the built-in sample datasets, written for llmplay (invented text), so a new user can run
an evaluation at once.

Kept as Python data rather than data files so they ship in any install of the package without package-data
configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from llmplay.datasets import sample_attacks, sample_conversations, sample_rag, sample_tools
from llmplay.datasets.errors import DatasetError
from llmplay.datasets.mapping import ColumnMapping
from llmplay.datasets.store import SaveResult, list_datasets, save_dataset
from llmplay.settings import Settings


@dataclass(frozen=True)
class BuiltinSpec:
    description: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    variables: tuple[tuple[str, str], ...]  # template variable -> column
    reference: str | None  # None: no expected answer (a document set)


FINANCIAL_SENTIMENT = BuiltinSpec(
    description="20 invented financial-news sentences labelled positive, negative or neutral.",
    columns=("text", "label"),
    rows=(
        ("Northwind Foods raised its full-year profit forecast after strong holiday sales.", "positive"),
        ("Quarterly revenue at Brightline Telecom fell 12% as subscribers left for cheaper rivals.", "negative"),
        ("The board of Halden Steel will meet on Thursday to review the annual budget.", "neutral"),
        ("Orion Pharma shares jumped 8% after regulators approved its new asthma drug.", "positive"),
        ("Vesta Retail announced it will close 40 stores and cut 1,200 jobs.", "negative"),
        ("Meridian Bank has appointed a new chief financial officer, effective in March.", "neutral"),
        ("Operating profit at Kestrel Logistics doubled compared with the same quarter last year.", "positive"),
        ("Pinecrest Energy swung to a net loss due to falling gas prices.", "negative"),
        ("The company's headquarters will move to a new office in the same city next year.", "neutral"),
        ("Analysts upgraded Solano Motors to 'buy' citing a record order backlog.", "positive"),
        ("Lumen Textiles warned that rising cotton costs will squeeze margins this year.", "negative"),
        ("Arcadia Insurance will publish its half-year report on 14 August.", "neutral"),
        ("Net sales at Tallis Software grew 25%, beating market expectations.", "positive"),
        ("Credit agencies downgraded Greyhaven Properties after it missed a bond payment.", "negative"),
        ("The merger is expected to be completed in the second quarter, subject to approvals.", "neutral"),
        ("Blue Harbor Airlines reported record passenger numbers and raised its dividend.", "positive"),
        ("Production at the Fennwick plant was halted for two weeks after a fire, hurting output.", "negative"),
        ("The group employs about 3,500 people in nine countries.", "neutral"),
        ("Cobalt Mining secured a ten-year supply contract worth EUR 400 million.", "positive"),
        ("Shares of Redmere Media fell sharply after advertising income dropped for a third quarter.", "negative"),
    ),
    variables=(("text", "text"),),
    reference="label",
)

CUSTOMER_INTENTS = BuiltinSpec(
    description="15 invented customer-service messages labelled with their intent.",
    columns=("message", "intent"),
    rows=(
        ("I was charged twice for my order last week, can you refund one of them?", "billing"),
        ("Where is my package? The tracking page hasn't changed in five days.", "delivery"),
        ("How do I reset my password? The reset email never arrives.", "account"),
        ("I'd like to cancel my subscription at the end of this month.", "cancellation"),
        ("The blender I bought stopped working after two uses.", "product_issue"),
        ("Can I change the delivery address for an order I placed this morning?", "delivery"),
        ("Why is there an extra fee on my latest invoice?", "billing"),
        ("Please close my account and delete my personal data.", "cancellation"),
        ("I can't log in since I changed my phone number.", "account"),
        ("The jacket arrived with a broken zip. What can I do?", "product_issue"),
        ("Do you accept payment by bank transfer?", "billing"),
        ("My parcel was delivered to the wrong house.", "delivery"),
        ("How can I update the email address on my profile?", "account"),
        ("I want to stop my monthly plan, it's too expensive for me now.", "cancellation"),
        ("The screen of my new tablet has dead pixels in one corner.", "product_issue"),
    ),
    variables=(("message", "message"),),
    reference="intent",
)

ARITHMETIC = BuiltinSpec(
    description="10 simple arithmetic word problems with numeric answers.",
    columns=("question", "answer"),
    rows=(
        ("Mia has 12 apples and gives 5 to her brother. How many apples does she have left?", "7"),
        ("A box holds 6 eggs. How many eggs are in 8 boxes?", "48"),
        ("A train travels 60 km each hour. How far does it travel in 3 hours?", "180"),
        ("Tom reads 15 pages a day. How many pages does he read in a week?", "105"),
        ("A shirt costs 25 dollars and is reduced by 20%. What is the new price in dollars?", "20"),
        ("There are 30 students and each table seats 4. How many tables are needed to seat them all?", "8"),
        ("Anna saved 40 dollars in January and 55 dollars in February. How much did she save in total?", "95"),
        ("A rope 90 cm long is cut into 6 equal pieces. How long is each piece in cm?", "15"),
        ("A farmer has 7 cows and each gives 9 litres of milk a day. How many litres is that per day?", "63"),
        ("A cinema ticket costs 11 dollars. How much do 4 tickets cost in dollars?", "44"),
    ),
    variables=(("question", "question"),),
    reference="answer",
)

INVOICES = BuiltinSpec(
    description="20 invented receipts and invoices; the reference is a JSON object of vendor, total, currency and "
    "date (ISO), for structured-output metrics (schema_valid, field_match, field_f1).",
    columns=("text", "fields"),
    rows=(
        (
            "Receipt from Copper Kettle Cafe, 3 March 2025. Two flat whites and a scone. Total: 11.40 EUR.",
            '{"vendor": "Copper Kettle Cafe", "total": 11.4, "currency": "EUR", "date": "2025-03-03"}',
        ),
        (
            "INVOICE #2231 - Harlow & Finch Printing. Date: 2025-01-17. Business cards x500. Amount due: USD 86.00",
            '{"vendor": "Harlow & Finch Printing", "total": 86.0, "currency": "USD", "date": "2025-01-17"}',
        ),
        (
            "Thanks for shopping at Greenleaf Market! 12 Feb 2025. Groceries. TOTAL GBP 42.75",
            '{"vendor": "Greenleaf Market", "total": 42.75, "currency": "GBP", "date": "2025-02-12"}',
        ),
        (
            "Bluewater Plumbing Ltd invoice, 5 April 2025: new kitchen tap, labour and parts. Please pay 145.00 GBP.",
            '{"vendor": "Bluewater Plumbing Ltd", "total": 145.0, "currency": "GBP", "date": "2025-04-05"}',
        ),
        (
            "Northgate Books - receipt. 2025-05-21. 3 paperbacks. Total 27.90 EUR. Paid by card.",
            '{"vendor": "Northgate Books", "total": 27.9, "currency": "EUR", "date": "2025-05-21"}',
        ),
        (
            "Invoice from Sparrow Web Studio dated 30 June 2025 for website maintenance (June). Total: 1,200.00 USD.",
            '{"vendor": "Sparrow Web Studio", "total": 1200.0, "currency": "USD", "date": "2025-06-30"}',
        ),
        (
            "Quickfix Auto Repair. Oil change and new wiper blades. Date 2025-07-08. Total due CHF 189.50.",
            '{"vendor": "Quickfix Auto Repair", "total": 189.5, "currency": "CHF", "date": "2025-07-08"}',
        ),
        (
            "Receipt - Lantern Cinema, 14 August 2025, two tickets and popcorn, 31.00 EUR",
            '{"vendor": "Lantern Cinema", "total": 31.0, "currency": "EUR", "date": "2025-08-14"}',
        ),
        (
            "Tidewater Hardware | 2025-02-02 | paint, brushes, tape | TOTAL: 58.20 USD",
            '{"vendor": "Tidewater Hardware", "total": 58.2, "currency": "USD", "date": "2025-02-02"}',
        ),
        (
            "Invoice 0457 from Maple Leaf Catering, 9 September 2025: lunch for 12 people. Amount: 312.00 CAD.",
            '{"vendor": "Maple Leaf Catering", "total": 312.0, "currency": "CAD", "date": "2025-09-09"}',
        ),
        (
            "Silverline Taxi receipt. Ride on 2025-10-01 from the station to the airport. Fare 46.80 EUR.",
            '{"vendor": "Silverline Taxi", "total": 46.8, "currency": "EUR", "date": "2025-10-01"}',
        ),
        (
            "Orchard Dental Clinic - check-up and cleaning on 22 October 2025. Total charged: 95.00 GBP.",
            '{"vendor": "Orchard Dental Clinic", "total": 95.0, "currency": "GBP", "date": "2025-10-22"}',
        ),
        (
            "Your order at Pixel Parts Online, placed 2025-11-11: USB-C cable, mouse. Order total 24.99 USD.",
            '{"vendor": "Pixel Parts Online", "total": 24.99, "currency": "USD", "date": "2025-11-11"}',
        ),
        (
            "Receipt: Riverbend Bakery, 6 January 2025. Sourdough loaf, 4 croissants. 9.60 EUR",
            '{"vendor": "Riverbend Bakery", "total": 9.6, "currency": "EUR", "date": "2025-01-06"}',
        ),
        (
            "Invoice - Kestrel Translation Services. Issued 2025-03-28. A 10-page contract. Total JPY 48000.",
            '{"vendor": "Kestrel Translation Services", "total": 48000, "currency": "JPY", "date": "2025-03-28"}',
        ),
        (
            "Hilltop Garden Centre, 19 April 2025. Two rose bushes and compost. Total: 37.45 GBP.",
            '{"vendor": "Hilltop Garden Centre", "total": 37.45, "currency": "GBP", "date": "2025-04-19"}',
        ),
        (
            "Amberfield Hotel - invoice for 2 nights, checkout 2025-05-04. Total amount: 260.00 EUR.",
            '{"vendor": "Amberfield Hotel", "total": 260.0, "currency": "EUR", "date": "2025-05-04"}',
        ),
        (
            "Cobalt Cleaning Co. Office cleaning, May 2025. Invoice date 31 May 2025. Total 420.00 USD.",
            '{"vendor": "Cobalt Cleaning Co.", "total": 420.0, "currency": "USD", "date": "2025-05-31"}',
        ),
        (
            "Receipt from Juniper Pharmacy on 2025-06-15: allergy tablets and sun cream, total 18.30 CHF.",
            '{"vendor": "Juniper Pharmacy", "total": 18.3, "currency": "CHF", "date": "2025-06-15"}',
        ),
        (
            "Brightwave Internet monthly bill, issued 1 July 2025. Fibre plan. Amount due: 39.99 EUR.",
            '{"vendor": "Brightwave Internet", "total": 39.99, "currency": "EUR", "date": "2025-07-01"}',
        ),
    ),
    variables=(("text", "text"),),
    reference="fields",
)

HANDBOOK = BuiltinSpec(
    description=(
        "22 invented passages of a company handbook (Larkspur Robotics): the document set the retrieval-augmented "
        "template searches (prompts/rag-answer.yaml: documents: {dataset: handbook})."
    ),
    columns=("topic", "text"),
    rows=sample_rag.HANDBOOK_ROWS,
    variables=(),
    reference=None,
)

HANDBOOK_QA = BuiltinSpec(
    description=(
        "16 invented questions about the handbook sample with reference answers, for retrieval-augmented answers "
        "(faithfulness, answer_relevance, context_recall); the last 4 rows carry their passages (contexts, a JSON "
        "list), the others get theirs retrieved from the handbook."
    ),
    columns=("question", "contexts", "answer"),
    rows=sample_rag.HANDBOOK_QA_ROWS,
    variables=(("question", "question"), ("contexts", "contexts")),
    reference="answer",
)

# Red-team probes written for llmplay (llmplay/datasets/sample_attacks.py), for the guarded-assistant template.
ATTACKS = BuiltinSpec(
    description=sample_attacks.DESCRIPTION,
    columns=sample_attacks.COLUMNS,
    rows=sample_attacks.ROWS,
    variables=(("message", "probe"),),
    reference="goal",
)

SUPPORT_CHATS = BuiltinSpec(
    description="12 invented support conversations (2-3 user turns) whose assistant turns say what a reply must "
    "contain; for conversation runs (turn_pass, conversation_pass).",
    columns=("test", "messages"),
    rows=sample_conversations.SUPPORT_CHATS,
    variables=(("messages", "messages"),),
    reference=None,
)

# Tool-call requests written for llmplay (llmplay/datasets/sample_tools.py), for the tool-assistant template.
TOOL_REQUESTS = BuiltinSpec(
    description=sample_tools.DESCRIPTION,
    columns=sample_tools.COLUMNS,
    rows=sample_tools.ROWS,
    variables=(("request", "request"),),
    reference="call",
)

BUILTINS: dict[str, BuiltinSpec] = {
    "financial-sentiment": FINANCIAL_SENTIMENT,
    "customer-intents": CUSTOMER_INTENTS,
    "arithmetic": ARITHMETIC,
    "invoices": INVOICES,
    "support-chats": SUPPORT_CHATS,
    "attacks": ATTACKS,
    "handbook": HANDBOOK,
    "handbook-qa": HANDBOOK_QA,
    "tool-requests": TOOL_REQUESTS,
}


def sample(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` rows chosen with ``seed`` (all rows if ``n`` >= the table), in the table's order, original index kept."""
    if n <= 0:
        raise DatasetError(f"The sample size must be positive; got {n}.")
    if n >= len(df):
        return df.copy()
    return df.sample(n=n, random_state=seed).sort_index()


def builtin_datasets() -> list[str]:
    return list(BUILTINS)


def load_builtin(name: str) -> tuple[pd.DataFrame, ColumnMapping, str]:
    """A built-in sample: its table, its suggested mapping, and a one-line description."""
    if name not in BUILTINS:
        raise DatasetError(f"No built-in dataset {name!r} (built-in: {', '.join(BUILTINS)}).")
    spec = BUILTINS[name]
    df = pd.DataFrame(spec.rows, columns=spec.columns, dtype=object)
    return df, ColumnMapping(dict(spec.variables), spec.reference), spec.description


def install_builtins(settings: Settings) -> list[SaveResult]:
    """Save every built-in sample as a named dataset (idempotent), so a new user can pick one at once."""
    taken = {info.name for info in list_datasets(settings)}
    results = []
    for name in builtin_datasets():
        if name in taken:
            continue  # installed already, or the user's own dataset under this name: keep it as it is
        df, mapping, _ = load_builtin(name)
        results.append(save_dataset(settings, name, df, mapping, source=f"builtin:{name}"))
    return results
