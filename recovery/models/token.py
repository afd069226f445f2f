"""An API token: lets another tool read one practice's report and CSV, nothing else.

Only a SHA-256 of the token is stored. The token is 32 random bytes, so a fast hash is
enough (there is no password to guess); a database dump does not hand out working tokens.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from recovery.db import Base, created_at


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))  # what it is for: "BI dashboard"
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The token's first characters, shown by `tokens list` so a person can tell them apart.
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[created_at]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]  # revoked tokens are kept: audit rows point at them
