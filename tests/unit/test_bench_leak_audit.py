"""bench.leak_audit runs: a small log of each format, audited in a child process, with its
time and peak memory written down."""

from __future__ import annotations

from pathlib import Path

from bench import leak_audit


def test_quick_run_writes_its_table(tmp_path: Path) -> None:
    output = tmp_path / "results.md"
    assert leak_audit.main(["--rows", "3000", "--output", str(output)]) == 0
    table = output.read_text()
    assert "| Asterisk Master.csv, oldest first | 3,000 |" in table
    assert "| Twilio export, newest first | 3,000 |" in table
    assert "MiB" in table and "3,000 calls" in table and "1,500 calls" in table
