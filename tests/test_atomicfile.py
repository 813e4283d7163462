"""One shared atomic write (llmplay/atomicfile.py): whole file or the old one, and no temp left on a failure."""

from __future__ import annotations

import pytest

from llmplay.atomicfile import atomic_write


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "t.yaml"
    atomic_write(target, "old\n")

    def chunks():
        yield "new half"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, chunks())
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.yaml"]
    atomic_write(tmp_path / "sub" / "n.txt", ["a", "b"])
    assert (tmp_path / "sub" / "n.txt").read_text() == "ab"
