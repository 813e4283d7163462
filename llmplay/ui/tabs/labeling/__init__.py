"""The Labeling tab: ``tab`` (one item at a time for a labeler), ``queues`` (admins' queue settings), ``review``
(admins' agreement, adjudication, dashboard, export), ``view`` (plain helpers), ``keys`` (keyboard shortcuts)."""
