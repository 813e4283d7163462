"""Row sampling, and the built-in sample datasets, written for llmplay (invented text), so a new user can run
an evaluation at once.

Kept as Python data rather than data files so they ship in any install of the package without package-data
configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

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
    reference: str


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

BUILTINS: dict[str, BuiltinSpec] = {
    "financial-sentiment": FINANCIAL_SENTIMENT,
    "customer-intents": CUSTOMER_INTENTS,
    "arithmetic": ARITHMETIC,
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
