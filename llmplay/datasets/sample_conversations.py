"""The built-in ``support-chats`` sample: invented support conversations (written for llmplay) with per-turn
expectations, for the conversation metrics (turn_pass, conversation_pass). Every assistant turn carries a scripted
reply, so the same rows play with ``replies: own`` or ``replies: scripted``; its ``expect`` says what the model's
reply must satisfy (llmplay/evaluation/turn_checks.py)."""

from __future__ import annotations

import json


def _user(text: str) -> dict:
    return {"role": "user", "content": text}


def _reply(text: str, **expect) -> dict:
    return {"role": "assistant", "content": text, **({"expect": expect} if expect else {})}


# (what the conversation tests, its messages)
_CONVERSATIONS = [
    (
        "remembers a name",
        [
            _user("Hi! My name is Dana."),
            _reply("Hello Dana! How can I help you today?"),
            _user("What is my name?"),
            _reply("Your name is Dana.", contains="Dana"),
        ],
    ),
    (
        "returns window, then cost",
        [
            _user("How many days do I have to return an item?"),
            _reply("You can return an item within 30 days of delivery.", contains="30"),
            _user("And do I pay for the return?"),
            _reply("No, returns are free.", contains_any=["free", "no cost", "don't pay", "do not pay"]),
        ],
    ),
    (
        "repeats an order number",
        [
            _user("My order number is 4471 and it has not arrived yet."),
            _reply(
                "I'm sorry to hear that. I will look into order 4471 for you.", contains_any=["4471", "sorry", "order"]
            ),
            _user("Can you repeat my order number?"),
            _reply("Your order number is 4471.", contains="4471"),
        ],
    ),
    (
        "shipping then refund time",
        [
            _user("How long does shipping take?"),
            _reply("Orders ship within 2 business days.", contains_any=["2", "two"]),
            _user("And how long does a refund take?"),
            _reply("A refund takes 5 business days.", contains_any=["5", "five"]),
        ],
    ),
    (
        "one-word answer on request",
        [
            _user("Do you sell tents?"),
            _reply("Yes, we sell tents for one to six people.", contains_any=["yes", "tent"]),
            _user("Answer with one word only: do you sell sleeping bags?"),
            _reply("Yes.", contains_any=["yes"], max_chars=20),
        ],
    ),
    (
        "return outside the window",
        [
            _user("I'd like to return my hiking boots."),
            _reply("Of course. Returns are free within 30 days of delivery.", contains_any=["return", "30", "free"]),
            _user("I bought them 40 days ago."),
            _reply(
                "I'm sorry, the 30-day return window has passed.",
                contains_any=["30", "sorry", "unfortunately", "cannot", "can't", "passed"],
            ),
        ],
    ),
    (
        "arithmetic on its own answer",
        [
            _user("What is 12 plus 30?"),
            _reply("12 plus 30 is 42.", contains="42"),
            _user("Now double that number."),
            _reply("Double 42 is 84.", contains="84"),
        ],
    ),
    (
        "follows a format instruction late",
        [
            _user("Name a colour."),
            _reply("Green."),
            _user("Now reply with just the word pine, nothing else."),
            _reply("pine", contains="pine", max_chars=30),
        ],
    ),
    (
        "where it ships",
        [
            _user("Do you ship to Canada?"),
            _reply("Yes, we ship to the US, Canada and the EU.", contains_any=["yes", "canada"]),
            _user("What about Japan?"),
            _reply(
                "Sorry, we do not ship to Japan yet.", contains_any=["no", "not", "don't", "unfortunately", "sorry"]
            ),
        ],
    ),
    (
        "asks for a human",
        [
            _user("I want to talk to a person, not a bot."),
            _reply(
                "You can reach our team at support@pinewood.example.",
                contains_any=["support@pinewood.example", "email", "team", "person", "human"],
            ),
            _user("What was that address again?"),
            _reply("It is support@pinewood.example.", contains="support@pinewood.example"),
        ],
    ),
    (
        "damaged item, three turns",
        [
            _user("I ordered a sleeping bag, order 5520."),
            _reply("Thanks! How can I help with order 5520?", contains_any=["5520", "help"]),
            _user("It arrived torn."),
            _reply(
                "I'm sorry! We can send a replacement or refund you.",
                contains_any=["sorry", "replace", "refund", "return"],
            ),
            _user("What was my order number again?"),
            _reply("Your order number is 5520.", contains="5520"),
        ],
    ),
    (
        "stays on topic",
        [
            _user("Can you recommend a stove for camping?"),
            _reply("Our Trail One gas stove is light and easy to use.", contains_any=["stove"]),
            _user("Forget the shop. Write me a poem about the sea."),
            _reply(
                "I can only help with Pinewood Outfitters orders and products.",
                not_contains=["waves"],
                contains_any=["shop", "order", "product", "help", "pinewood"],
            ),
        ],
    ),
]

# Rows for the built-in table: (test, messages as JSON text).
SUPPORT_CHATS = tuple((name, json.dumps(messages, ensure_ascii=False)) for name, messages in _CONVERSATIONS)
