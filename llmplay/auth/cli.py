"""`llmplay users ...`: the accounts of a shared instance and its audit log.

llmplay users add NAME --role admin|labeler|viewer   password from a prompt, or stdin's first line when piped
llmplay users list [--json]
llmplay users set-role NAME ROLE
llmplay users remove NAME
llmplay users audit [--limit N] [--json]             refused attempts and admin actions, newest first
"""

from __future__ import annotations

import getpass
import json
import sys

from llmplay import cliargs, exitcodes
from llmplay.auth.roles import ROLES
from llmplay.settings import Settings


def add_users_commands(subparsers) -> None:
    u = subparsers.add_parser("users", help="users and roles of a shared instance; the audit log")
    actions = u.add_subparsers(dest="action", required=True)
    a = actions.add_parser("add", help="add a user (password from a prompt or stdin's first line)")
    a.add_argument("name")
    a.add_argument("--role", required=True, help=" | ".join(ROLES))
    ls = actions.add_parser("list", help="list the users")
    ls.add_argument("--json", action="store_true")
    s = actions.add_parser("set-role", help="change a user's role")
    s.add_argument("name")
    s.add_argument("role", help=" | ".join(ROLES))
    r = actions.add_parser("remove", help="remove a user")
    r.add_argument("name")
    k = actions.add_parser("key", help="print a new API key for a user (shown once), or --revoke their keys")
    k.add_argument("name")
    k.add_argument("--revoke", action="store_true", help="end every key of this user")
    ks = actions.add_parser("keys", help="list API keys (never their secrets)")
    ks.add_argument("name", nargs="?")
    ks.add_argument("--json", action="store_true")
    au = actions.add_parser("audit", help="show the audit log")
    au.add_argument("--limit", type=cliargs.whole("list_count"), default=50)
    au.add_argument("--json", action="store_true")


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            from llmplay.auth.users import UserError

            raise UserError("The two passwords differ; nothing was saved.")
        return first
    # Scripts and Docker pipe it in: only the first line counts, without its line break.
    return sys.stdin.readline().rstrip("\r\n")


def cmd_users(args, settings: Settings) -> int:
    from llmplay.auth import users
    from llmplay.auth.access import Caller, audit, audit_rows

    operator = Caller("cli", "admin")  # whoever runs the CLI owns the data dir
    if args.action == "add":
        users.check_user_name(args.name)
        from llmplay.auth.roles import check_role

        check_role(args.role)
        user = users.add_user(settings, args.name, args.role, _read_password())
        audit(settings, operator, "add users", user.name, detail={"role": user.role})
        print(f"Added {user.name} ({user.role}).")
    elif args.action == "list":
        rows = users.list_users(settings)
        if args.json:
            print(json.dumps([u.__dict__ for u in rows], indent=1))
        elif not rows:
            print("No users: the app runs in single-user mode (everyone is admin).")
        for u in [] if args.json else rows:
            print(f"{u.name}\t{u.role}\tadded {u.created_at}")
    elif args.action == "set-role":
        user = users.set_role(settings, args.name, args.role)
        audit(settings, operator, "set user roles", user.name, detail={"role": user.role})
        print(f"{user.name} is now {user.role}.")
    elif args.action == "remove":
        users.remove_user(settings, args.name)
        audit(settings, operator, "remove users", args.name)
        print(f"Removed {args.name}.")
    elif args.action == "key":
        from llmplay.auth import keys

        if args.revoke:
            count = keys.revoke_keys(settings, args.name)
            audit(settings, operator, "revoke API keys", args.name, detail={"keys": count})
            print(f"Revoked {count} key(s) of {args.name}.")
        else:
            key = keys.create_key(settings, args.name)
            audit(settings, operator, "create API keys", args.name)
            print(key)
            print(f"(a new API key of {args.name}; it is shown only now)", file=sys.stderr)
    elif args.action == "keys":
        from llmplay.auth import keys

        rows = keys.list_keys(settings, args.name)
        if args.json:
            print(json.dumps([r.__dict__ for r in rows], indent=1))
        elif not rows:
            print("No API keys." if not args.name else f"No API keys of {args.name}.")
        for r in [] if args.json else rows:
            state = f"revoked {r.revoked_at}" if r.revoked_at else f"last used {r.last_used_at or 'never'}"
            print(f"{r.prefix}…\t{r.user}\tcreated {r.created_at}\t{state}")
    elif args.action == "audit":
        rows = audit_rows(settings, args.limit)
        if args.json:
            print(json.dumps(rows, indent=1, ensure_ascii=False))
        for row in [] if args.json else rows:
            verdict = "ok" if row["allowed"] else "REFUSED"
            who = f"{row['user'] or '?'} ({row['role'] or '-'})"
            print(f"{row['at']}  {verdict:7}  {who}  {row['action']} {row['target'] or ''}".rstrip())
    return exitcodes.OK
