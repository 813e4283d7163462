"""The Compare tab: ``tab`` (handlers and layout), ``columns`` (one column's widgets), ``view`` (plain helpers:
the form to columns, what a column shows)."""
