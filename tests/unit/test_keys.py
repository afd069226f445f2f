"""PHI keys: their own secrets, a list that rotates, and the legacy key read until rotated."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.cli import ensure_dev_env, main
from recovery.config import Settings
from recovery.crypto import MissingKey, PhiCipher, legacy_key, new_key
from recovery.db import utcnow
from recovery.models import AuditEvent, Message, Role, User
from recovery.services.auth import create_user
from recovery.services.replies import record_inbound
from tests.conftest import PHI_KEY

LINE = "+15125550100"  # Valley Family Clinic's
WORDS = "my chest hurts since this morning"


def env_values(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in path.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )


def test_a_fresh_env_has_its_own_phi_key_not_one_derived_from_the_session_secret(
    tmp_path: Path,
) -> None:
    path = tmp_path / ".env"

    ensure_dev_env(path)

    values = env_values(path)
    Fernet(values["PHI_ENCRYPTION_KEYS"].encode())  # a real Fernet key
    assert values["PHI_ENCRYPTION_KEYS"] != legacy_key(values["SECRET_KEY"])
    settings = Settings(_env_file=path)  # type: ignore[call-arg]
    assert settings.phi_legacy_secrets == []  # nothing old to read on a new install
    stored = PhiCipher.from_settings(settings).encrypt(WORDS)
    # Whoever holds SECRET_KEY (and can forge a session) cannot read it.
    with pytest.raises(ValueError, match="cannot decrypt"):
        PhiCipher([legacy_key(values["SECRET_KEY"])]).decrypt(stored)


def test_an_older_env_gains_a_phi_key_and_keeps_everything_else(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("SECRET_KEY=mine\nWEBHOOK_SECRET=theirs\n", encoding="utf-8")

    ensure_dev_env(path)
    ensure_dev_env(path)  # a second run adds nothing more

    values = env_values(path)
    assert (values["SECRET_KEY"], values["WEBHOOK_SECRET"]) == ("mine", "theirs")
    assert path.read_text(encoding="utf-8").count("PHI_ENCRYPTION_KEYS=") == 1
    Fernet(values["PHI_ENCRYPTION_KEYS"].encode())


def test_no_phi_key_is_an_error_not_a_key_derived_from_secret_key() -> None:
    settings = Settings(_env_file=None, SECRET_KEY="s" * 32)  # type: ignore[call-arg]

    with pytest.raises(MissingKey, match="PHI_ENCRYPTION_KEYS"):
        PhiCipher.from_settings(settings)
    with pytest.raises(MissingKey, match="not a Fernet key"):
        PhiCipher(["not-a-key"])


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old, new = new_key(), new_key()
    under_old = PhiCipher([old]).encrypt(WORDS)

    both = PhiCipher([new, old])
    under_new = both.encrypt(WORDS)

    assert both.decrypt(under_old) == both.decrypt(under_new) == WORDS
    assert PhiCipher([new]).decrypt(under_new) == WORDS
    with pytest.raises(ValueError):
        PhiCipher([old]).decrypt(under_new)
    assert both.is_current(under_new) and not both.is_current(under_old)


def test_data_under_the_legacy_key_stays_readable_and_the_log_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    legacy_stored = PhiCipher([legacy_key("old-secret")]).encrypt(WORDS)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, SECRET_KEY="old-secret", PHI_ENCRYPTION_KEYS=PHI_KEY
    )

    with caplog.at_level(logging.WARNING, logger="recovery.crypto"):
        cipher = PhiCipher.from_settings(settings)

    assert cipher.decrypt(legacy_stored) == WORDS
    assert not cipher.is_current(legacy_stored)
    assert PhiCipher([PHI_KEY]).decrypt(cipher.encrypt(WORDS)) == WORDS  # new data: new key
    assert any("legacy key" in r.getMessage() for r in caplog.records)
    off = settings.model_copy(update={"phi_legacy_key": False})
    with pytest.raises(ValueError):
        PhiCipher.from_settings(off).decrypt(legacy_stored)


def test_keys_new_prints_a_fernet_key() -> None:
    printed = CliRunner().invoke(main, ["keys", "new"])

    assert printed.exit_code == 0
    Fernet(printed.output.strip().encode())


@pytest.fixture
def cli_env(
    settings: Settings, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("PHI_ENCRYPTION_KEYS", PHI_KEY)
    monkeypatch.chdir(settings.var_dir.parent)  # no developer's .env


def test_keys_rotate_reencrypts_everything_in_batches_once_and_is_audited(
    cli_env: None, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    legacy = PhiCipher([legacy_key(settings.secret_key)])
    with sessions.begin() as session:
        for n in range(5):
            record_inbound(
                session,
                legacy,
                provider_sid=f"SM{n:032d}",
                from_raw=f"+1512555017{n}",
                to_raw=LINE,
                body=f"{WORDS} {n}",
                now=utcnow(),
            )
        user = create_user(
            session,
            email="m@example.com",
            name="M",
            password="x" * 12,
            role=Role.ADMIN,
            practice_slug=None,
        )
        user.totp_secret = legacy.encrypt("JBSWY3DPEHPK3PXP")

    first = CliRunner().invoke(main, ["keys", "rotate", "--batch", "2"])

    assert first.exit_code == 0, first.output
    assert "re-encrypted 6, already under the first key 0, unreadable 0" in first.output
    assert "messages.body_ciphertext: up to id" in first.output  # it went in batches
    new_only = PhiCipher([PHI_KEY])
    with sessions() as session:
        bodies = session.scalars(select(Message.body_ciphertext).order_by(Message.id)).all()
        secret = session.scalars(select(User.totp_secret)).one()
        audited = session.scalars(select(AuditEvent.detail)).all()
    assert [new_only.decrypt(b or "") for b in bodies] == [f"{WORDS} {n}" for n in range(5)]
    assert new_only.decrypt(secret or "") == "JBSWY3DPEHPK3PXP"
    assert any(d.startswith("keys rotate: 6 re-encrypted") for d in audited)

    again = CliRunner().invoke(main, ["keys", "rotate"])
    assert again.exit_code == 0, again.output
    assert "re-encrypted 0, already under the first key 6, unreadable 0" in again.output


def test_keys_rotate_reports_what_no_key_opens_and_fails(
    cli_env: None, sessions: sessionmaker[Session]
) -> None:
    stranger = PhiCipher([new_key()])
    with sessions.begin() as session:
        record_inbound(
            session,
            stranger,
            provider_sid="SM" + "9" * 32,
            from_raw="+15125550179",
            to_raw=LINE,
            body=WORDS,
            now=utcnow(),
        )

    rotated = CliRunner().invoke(main, ["keys", "rotate"])

    assert rotated.exit_code != 0
    assert "unreadable 1" in rotated.output and "no configured key opens it" in rotated.output
