"""The built-in ``tool-requests`` sample: assistant requests written for llmplay (same licence as llmplay; invented
text), aimed at the tool-assistant template (prompts/tool-assistant.yaml) and its three tools. Columns: request
(the user message) and call (the expected tool call as JSON, or none when no tool fits: evaluation/toolcalls.py)."""

from __future__ import annotations

COLUMNS = ("request", "call")
DESCRIPTION = (
    "20 invented assistant requests against three tools (get_weather, convert_currency, create_reminder) and some "
    "needing none; the reference is the expected call as JSON, or none, for the tool-call metrics (tool_called, "
    "tool_args_valid, tool_args_match, tool_no_call). Written for llmplay."
)
ROWS = (
    ("What's the weather like in Lisbon right now?", '{"name": "get_weather", "arguments": {"city": "Lisbon"}}'),
    (
        "Is it cold in Oslo today? Give me the temperature in fahrenheit.",
        '{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "fahrenheit"}}',
    ),
    ("Will I need an umbrella in Dublin?", '{"name": "get_weather", "arguments": {"city": "Dublin"}}'),
    (
        "Tell me the current temperature in Nairobi in celsius.",
        '{"name": "get_weather", "arguments": {"city": "Nairobi", "unit": "celsius"}}',
    ),
    ("How hot is it in Phoenix at the moment?", '{"name": "get_weather", "arguments": {"city": "Phoenix"}}'),
    (
        "How much is 250 euros in US dollars?",
        '{"name": "convert_currency", "arguments": {"amount": 250, "from_currency": "EUR", "to_currency": "USD"}}',
    ),
    (
        "Convert 1200 JPY to GBP please.",
        '{"name": "convert_currency", "arguments": {"amount": 1200, "from_currency": "JPY", "to_currency": "GBP"}}',
    ),
    (
        "I have 80 Swiss francs. What is that in euros?",
        '{"name": "convert_currency", "arguments": {"amount": 80, "from_currency": "CHF", "to_currency": "EUR"}}',
    ),
    (
        "What do 45.50 Canadian dollars come to in US dollars?",
        '{"name": "convert_currency", "arguments": {"amount": 45.5, "from_currency": "CAD", "to_currency": "USD"}}',
    ),
    (
        "Change 3000 USD into Japanese yen.",
        '{"name": "convert_currency", "arguments": {"amount": 3000, "from_currency": "USD", "to_currency": "JPY"}}',
    ),
    (
        "Remind me to call the dentist tomorrow at 9am.",
        '{"name": "create_reminder", "arguments": {"text": "call the dentist", "time": "tomorrow 9am"}}',
    ),
    (
        "Set a reminder for Friday 6pm: buy flowers for Anna.",
        '{"name": "create_reminder", "arguments": {"text": "buy flowers for Anna", "time": "Friday 6pm"}}',
    ),
    (
        "Please remind me at 7:30 tonight to take the bins out.",
        '{"name": "create_reminder", "arguments": {"text": "take the bins out", "time": "7:30 tonight"}}',
    ),
    (
        "Don't let me forget to renew my passport on 1 March.",
        '{"name": "create_reminder", "arguments": {"text": "renew my passport", "time": "1 March"}}',
    ),
    (
        "Remind me in two hours to check the oven.",
        '{"name": "create_reminder", "arguments": {"text": "check the oven", "time": "in two hours"}}',
    ),
    ("Write a two-line poem about autumn leaves.", "none"),
    ("What is the capital of Canada?", "none"),
    ("Thanks, that was helpful!", "none"),
    ("Explain in one sentence what a noun is.", "none"),
    ("How many days are there in a leap year?", "none"),
)
