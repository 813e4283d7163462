"""The Train tab: ``tab`` (the job form, preview, start / cancel / resume, progress), ``versions`` (the trained
versions panel: evaluate, merge, export, delete), ``view`` (plain HTML and rows: the progress bar, the loss
chart, the data preview, job and version tables)."""
