"""The Evaluate tab: ``tab`` (handlers and layout), ``layout`` (the form's parts and their wiring), ``view``
(plain helpers: form -> RunConfig, tables, chart), ``feedback`` (send a run's rows to a labeling queue)."""
