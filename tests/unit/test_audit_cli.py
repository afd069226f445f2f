"""`recovery audit-calls`: the figures as text and JSON, a practice's clock and visit value,
clear errors, and a progress bar only for a terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from recovery.cli import main, migrate
from recovery.config import Settings
from tests.conftest import PRACTICES_FILE

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "call_logs"
MASTER = str(LOGS / "Master.csv")


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # away from the checkout's .env
    return CliRunner()


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runner: CliRunner) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    migrate(Settings(_env_file=None, DATABASE_URL=url))  # type: ignore[call-arg]
    loaded = runner.invoke(main, ["practices", "load", str(PRACTICES_FILE)])
    assert loaded.exit_code == 0, loaded.output
    return url


def test_json_has_the_figures_and_the_assumptions(runner: CliRunner) -> None:
    result = runner.invoke(main, ["audit-calls", MASTER, "--json", "--visit-value", "200"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["calls"] == 5 and figures["missed"] == 4
    assert figures["missed_rate"] == pytest.approx(0.8)
    assert figures["callers_never_reached"] == 2
    assert figures["annual_leak_usd"] == 7500
    assert figures["assumptions"] == {
        "new_patient_share": 0.3,
        "live_booking_rate": 0.7,
        "callback_booking_rate": 0.45,
        "operating_days": 250,
        "visit_value_usd": 200,
        "callback_window_days": 7,
    }
    assert figures["malformed_lines"] == [
        {"line": 7, "problem": "no start time, or not a date and time"}
    ]
    assert "5125550199" not in result.output  # figures, not callers


def test_practice_gives_the_clock_hours_and_visit_value(
    runner: CliRunner, database_url: str
) -> None:
    result = runner.invoke(main, ["audit-calls", MASTER, "--practice", "valley-family", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["timezone"] == "America/Chicago"
    # Valley Family opens Mon 08-12 and 13-17, Tue 08-17: the Mon 12:04 call (lunch), the
    # Mon 18:30 call and the Friday call are after hours.
    assert figures["after_hours_share"] == pytest.approx(3 / 5)
    # 4 missed over the one operating day in the log (Friday is closed) x 30% x 25% x $180
    # (its visit_value) x 250.
    assert figures["estimate"]["operating_days_in_log"] == 1
    assert figures["annual_leak_usd"] == 13500


def test_text_shows_each_assumption_and_the_bad_lines(runner: CliRunner) -> None:
    result = runner.invoke(
        main,
        ["audit-calls", MASTER, "--visit-value", "200", "--callback-window-days", "30"],
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "80.0% of calls" in out
    assert "$7,500" in out
    assert "30% new patients x (70% live - 45% callback booking) x $200 x 250" in out
    assert "within 30 days" in out
    assert "lines 7 (no start time" in out


def test_edited_assumptions_change_the_estimate(runner: CliRunner) -> None:
    result = runner.invoke(
        main,
        [
            "audit-calls",
            MASTER,
            "--json",
            "--visit-value=300",
            "--new-patient-share=0.5",
            "--live-booking-rate=0.8",
            "--callback-booking-rate=0.4",
            "--operating-days=200",
        ],
    )
    assert json.loads(result.output)["annual_leak_usd"] == 24000


def test_not_a_call_log_is_a_clear_error(runner: CliRunner, tmp_path: Path) -> None:
    other = tmp_path / "patients.csv"
    other.write_text("name,email\nJane,jane@example.com\n")
    result = runner.invoke(main, ["audit-calls", str(other)])
    assert result.exit_code == 1
    assert "not a call log" in result.output and "time,from,to,status,duration" in result.output


def test_impossible_assumption_and_unknown_practice(runner: CliRunner, database_url: str) -> None:
    bad = runner.invoke(main, ["audit-calls", MASTER, "--new-patient-share", "3"])
    assert bad.exit_code == 1 and "new_patient_share must be between 0 and 1" in bad.output
    nobody = runner.invoke(main, ["audit-calls", MASTER, "--practice", "nope"])
    assert nobody.exit_code == 1 and "no practice 'nope'" in nobody.output


def test_forced_format(runner: CliRunner) -> None:
    result = runner.invoke(main, ["audit-calls", MASTER, "--format", "twilio"])
    assert result.exit_code == 1 and "Twilio call-log header" in result.output


def _big_log(path: Path, rows: int) -> None:
    start = datetime(2026, 1, 5, 8)
    with path.open("w") as out:
        out.write("time,from,to,status,duration\n")
        for n in range(rows):
            at = (start + timedelta(seconds=30 * n)).isoformat(sep=" ")
            out.write(
                f"{at},{5125500000 + n % 997},5125550100,{'busy' if n % 4 else 'answered'},0\n"
            )


def test_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    log = tmp_path / "year.csv"
    _big_log(log, 60_000)
    command = [str(Path(sys.executable).parent / "recovery"), "audit-calls", str(log), "--json"]
    env = {**os.environ, "COLUMNS": "100"}

    piped = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == ""  # no bar into a pipe or a log
    assert json.loads(piped.stdout)["calls"] == 60_000

    controller, terminal = pty.openpty()
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=terminal, env=env, cwd=tmp_path
    ) as proc:
        os.close(terminal)
        seen = b""
        while True:
            ready, _, _ = select.select([controller], [], [], 300)
            if not ready:
                break
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the process closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        stdout = proc.stdout.read() if proc.stdout else b""
        assert proc.wait(timeout=300) == 0
    os.close(controller)
    assert b"Auditing year.csv" in seen and b"100%" in seen
    assert json.loads(stdout)["calls"] == 60_000
