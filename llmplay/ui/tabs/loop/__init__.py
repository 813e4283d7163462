"""The Loop tab: ``tab`` (model lines: settings, run now, promote, rollback, the timeline) and ``view`` (plain
helpers: tables and charts of a line's updates)."""
