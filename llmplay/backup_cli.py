"""``llmplay backup DEST`` and ``llmplay restore SRC`` (llmplay/backup.py does the work).

Exit codes: 0 done; 1 the backup is damaged (a file does not match the manifest, the manifest has wrong types
or names a path it must not write, or the database fails integrity_check: nothing restored); 2 bad input (no
database to back up, a data dir that already has one, an empty path, a folder the system will not write).
"""

from __future__ import annotations

import json
import sys

from llmplay import backup, cliargs, exitcodes
from llmplay.settings import Settings


def add_backup_commands(sub) -> None:
    b = sub.add_parser(
        "backup",
        help="back up the database and data files into DEST/llmplay-<UTC time>/ (safe while the app runs)",
    )
    b.add_argument(
        "dest", type=cliargs.path, help="folder for backups (created); each backup is a new folder inside it"
    )
    keep = cliargs.whole("list_count")
    b.add_argument("--keep", type=keep, metavar="N", help="then delete all but the N newest backups in DEST")
    b.add_argument("--json", action="store_true", help="print the manifest as JSON")
    r = sub.add_parser("restore", help="restore a backup into a data dir that has no database yet")
    r.add_argument(
        "src",
        type=cliargs.path,
        help="a backup folder, or the folder holding backups (the newest complete one is used)",
    )
    r.add_argument("--json", action="store_true", help="print what was restored as JSON")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def cmd_backup(args, settings: Settings) -> int:
    made = backup.backup(settings, args.dest, keep=args.keep)
    m = made.manifest
    if args.json:
        print(json.dumps({"path": str(made.path), **m}, ensure_ascii=False))
        return exitcodes.OK
    rows = sum(m["database"]["tables"].values())
    print(
        f"Backed up the database ({len(m['database']['tables'])} tables, {rows} rows, integrity "
        f"{m['database']['integrity_check']}) and {len(m['files'])} files ({_mb(m['total_bytes'])} in all) "
        f"to {made.path} in {m['elapsed_s']:.1f} s."
    )
    for entry in m["skipped"]:
        print(f"  left out {entry['path']}: {entry['reason']}")
    if args.keep:
        print(f"Kept the {args.keep} newest backups in {args.dest}.")
    return exitcodes.OK


def cmd_restore(args, settings: Settings) -> int:
    try:
        found = backup.restore(settings, args.src)
    except backup.BackupCorruptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exitcodes.CHECK_FAILED
    m = found.manifest
    if args.json:
        print(json.dumps({"restored": str(found.path), "data_dir": str(settings.data_dir), **m}, ensure_ascii=False))
        return exitcodes.OK
    rows = sum(m["database"]["tables"].values())
    print(
        f"Restored {found.path} (made {m['created_at']}, llmplay {m['llmplay_version']}): the database "
        f"({rows} rows) and {len(m['files'])} files into {settings.data_dir}."
    )
    return exitcodes.OK
