"""`llmplay users` end to end, in a subprocess with a piped stdin (the Docker bootstrap path)."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys

import pytest

from llmplay import exitcodes
from llmplay.auth import users
from llmplay.cli import main
from llmplay.settings import Settings


def run(data_dir, *args, stdin=""):
    env = {**os.environ, "LLMPLAY_DATA_DIR": str(data_dir)}
    env.pop("LLMPLAY_AUTH", None)
    return subprocess.run(
        [sys.executable, "-m", "llmplay.cli", *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
    )


def test_users_round_trip(tmp_path):
    added = run(tmp_path, "users", "add", "alice", "--role", "admin", stdin="correct horse\nignored line\n")
    assert added.returncode == exitcodes.OK, added.stderr
    assert run(tmp_path, "users", "add", "bob", "--role", "labeler", stdin="bobs password\n").returncode == 0

    listed = json.loads(run(tmp_path, "users", "list", "--json").stdout)
    assert [(u["name"], u["role"]) for u in listed] == [("alice", "admin"), ("bob", "labeler")]

    settings = Settings(data_dir=tmp_path)
    assert users.authenticate(settings, "alice", "correct horse") == "admin"  # only the first line counts
    assert users.authenticate(settings, "alice", "correct horse\nignored line") is None
    assert users.authenticate(settings, "bob", "wrong password") is None
    assert users.authenticate(settings, "nobody", "bobs password") is None

    assert run(tmp_path, "users", "set-role", "bob", "viewer").returncode == 0
    assert users.role_of(settings, "bob") == "viewer"

    # The last admin can be neither demoted nor removed; nothing changes.
    demote = run(tmp_path, "users", "set-role", "alice", "labeler")
    assert demote.returncode == exitcodes.BAD_INPUT and "last admin" in demote.stderr
    remove = run(tmp_path, "users", "remove", "alice")
    assert remove.returncode == exitcodes.BAD_INPUT and "last admin" in remove.stderr
    assert users.role_of(settings, "alice") == "admin"

    assert run(tmp_path, "users", "remove", "bob").returncode == 0
    assert [u.name for u in users.list_users(settings)] == ["alice"]
    audit = run(tmp_path, "users", "audit", "--json")
    actions = [(r["action"], r["target"]) for r in json.loads(audit.stdout)]
    assert ("remove users", "bob") in actions and ("set user roles", "bob") in actions


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("add", "carol", "--role", "boss"), "long enough pw\n", "Unknown role"),
        (("add", "carol", "--role", "admin"), "short\n", "at least 8"),
        (("add", "carol", "--role", "admin"), "\n", "at least 8"),
        (("add", "../etc", "--role", "admin"), "long enough pw\n", "not allowed"),
        (("add", "a b", "--role", "admin"), "long enough pw\n", "not allowed"),
        (("set-role", "nobody", "admin"), "", "No user"),
    ],
)
def test_bad_input_is_refused_and_stores_nothing(tmp_path, monkeypatch, capsys, args, stdin, message):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))  # in-process: a piped stdin, not a terminal
    assert main(["--data-dir", str(tmp_path), "users", *args]) == exitcodes.BAD_INPUT
    assert message in capsys.readouterr().err
    assert users.list_users(Settings(data_dir=tmp_path)) == []


def test_hash_is_not_the_password_and_verifies(tmp_path):
    settings = Settings(data_dir=tmp_path)
    users.add_user(settings, "dora", "viewer", "s3cret-pass")
    with sqlite3.connect(settings.db_path) as con:
        stored = con.execute("select password_hash from users where name = 'dora'").fetchone()[0]
    assert "s3cret-pass" not in stored and stored.startswith("$argon2id$")
    assert users.verify_password(stored, "s3cret-pass")
    assert not users.verify_password(stored, "s3cret-pasS")
    # The second check is remembered (no second argon2 run); a wrong password or a removed user still fails.
    assert [users.authenticate(settings, "dora", "s3cret-pass") for _ in range(2)] == ["viewer", "viewer"]
    assert users.authenticate(settings, "dora", "s3cret-pasS") is None
    users.add_user(settings, "ed", "admin", "ed-password")
    users.remove_user(settings, "dora")
    assert users.authenticate(settings, "dora", "s3cret-pass") is None
    users.add_user(settings, "dora", "viewer", "s3cret-pass")
    with pytest.raises(users.UserError, match="exists already"):
        users.add_user(settings, "dora", "admin", "another-pass")


def test_api_keys_are_printed_once_listed_without_their_secret_and_revoked(tmp_path):
    from llmplay.auth.keys import key_user

    assert run(tmp_path, "users", "add", "app", "--role", "viewer", stdin="app password\n").returncode == 0
    made = run(tmp_path, "users", "key", "app")
    assert made.returncode == exitcodes.OK, made.stderr
    key = made.stdout.strip()
    assert key.startswith("llp-") and "shown only now" in made.stderr
    settings = Settings(data_dir=tmp_path)
    assert key_user(settings, key) == ("app", "viewer")

    listed = run(tmp_path, "users", "keys", "--json")
    rows = json.loads(listed.stdout)
    assert [(r["user"], r["prefix"], r["revoked_at"]) for r in rows] == [("app", key[:10], None)]
    assert key not in listed.stdout and key not in run(tmp_path, "users", "keys").stdout

    revoked = run(tmp_path, "users", "key", "app", "--revoke")
    assert revoked.returncode == exitcodes.OK and "Revoked 1 key(s) of app." in revoked.stdout
    assert key_user(settings, key) is None
    missing = run(tmp_path, "users", "key", "nobody")
    assert missing.returncode == exitcodes.BAD_INPUT and "No user 'nobody'" in missing.stderr
    assert "Traceback" not in missing.stderr
