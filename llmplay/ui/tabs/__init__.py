"""One module (or package, for the bigger tabs) per tab of the app, in the order the page shows them:
Playground, Templates, Evaluate, Compare, Arena (and Leaderboard), Train, Labeling, Loop. Each exposes
``build_<tab>(services, demo)``: it lays out the tab and wires its events to the app's services; the plain
helpers a tab needs (tables, charts, parsing a form) sit beside it in ``view.py`` / ``layout.py``, without
gradio state. Helpers several tabs share live one level up (``ui/common.py``, ``ui/decoding.py``,
``ui/fields.py``, ``ui/models_panel.py``).

Must not know: another tab (events that cross tabs are wired in ``ui/app.py``, the one place that knows both);
storage rules or model logic (they belong to the packages below the UI)."""
