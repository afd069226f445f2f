"""The second factor: TOTP codes (RFC 6238, what every authenticator app shows) and
one-time recovery codes for a lost phone.

The secret is stored encrypted with the PHI key; the QR code that carries it to the phone
is drawn here as SVG (segno), so no page loads anything from another site.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno
from sqlalchemy.orm import Session

from recovery.crypto import PhiCipher
from recovery.models import AuditAction, User
from recovery.services.audit import record

ISSUER = "Recovery"
RECOVERY_CODE_COUNT = 10
STEP_S = 30
# One step either side: a phone clock 30 s off still works, a code is good for 90 s at most.
VALID_WINDOW = 1


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """An inline <svg> element (no XML declaration) to put straight into the page."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(
        out, kind="svg", xmldecl=False, svgns=True, scale=5, border=2, title="Sign-in QR code"
    )
    return out.getvalue().decode("utf-8")


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    code = "".join(ch for ch in code if ch.isdigit())
    if len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    step = int(now.timestamp()) // STEP_S
    for candidate in range(step - VALID_WINDOW, step + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.at(candidate * STEP_S), code):
            return candidate
    return None


def _code_hash(code: str) -> str:
    return hashlib.sha256(_normal_code(code).encode()).hexdigest()


def _normal_code(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def new_recovery_codes() -> list[str]:
    # 10 characters of base32 (50 bits): typed from paper, shown as xxxxx-xxxxx.
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(alphabet) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


@dataclass(frozen=True)
class SecondFactor:
    ok: bool
    used_recovery_code: bool = False
    recovery_codes_left: int = 0


def enrol(
    session: Session, cipher: PhiCipher, user_id: int, secret: str, code: str, *, now: datetime
) -> list[str] | None:
    """Keep `secret` as this user's second factor if `code` proves their phone has it;
    return the recovery codes to show once, or None for a wrong code."""
    user = session.get(User, user_id)
    if user is None:
        return None
    step = _matching_step(secret, code, now)
    if step is None:
        return None
    codes = new_recovery_codes()
    user.totp_secret = cipher.encrypt(secret)
    user.totp_last_step = step
    user.recovery_codes = " ".join(_code_hash(c) for c in codes)
    record(session, user.id, AuditAction.TOTP_ENROLLED, now=now)
    return codes


def check(
    session: Session, cipher: PhiCipher, user_id: int, code: str, *, now: datetime
) -> SecondFactor:
    """A TOTP code (not one used before) or an unused recovery code (used up now)."""
    user = session.get(User, user_id, with_for_update=True)
    if user is None or user.totp_secret is None:
        return SecondFactor(ok=False)
    step = _matching_step(cipher.decrypt(user.totp_secret), code, now)
    if step is not None and step > (user.totp_last_step or -1):
        user.totp_last_step = step
        return SecondFactor(ok=True)
    hashes = user.recovery_codes.split()
    wanted = _code_hash(code)
    if len(_normal_code(code)) == 10 and wanted in hashes:
        hashes.remove(wanted)
        user.recovery_codes = " ".join(hashes)
        record(
            session,
            user.id,
            AuditAction.RECOVERY_CODE_USED,
            now=now,
            detail=f"{len(hashes)} left",
        )
        return SecondFactor(ok=True, used_recovery_code=True, recovery_codes_left=len(hashes))
    return SecondFactor(ok=False)
