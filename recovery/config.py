"""One typed Settings object, read from the environment (and a local `.env`).

It is built once at each edge (the web app factory, the Celery app, the CLI) and passed in;
nothing reads the environment anywhere else, so tests can hand in their own Settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

DEFAULT_VAR_DIR = Path("var")
# templates/ sits beside recovery/ (the package is installed editable, from the checkout).
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Unset means the embedded default: a SQLite file under var/, so a laptop needs no server.
    database_url: str = Field(default="", alias="DATABASE_URL")
    # Unset means the embedded broker: kombu's filesystem transport under var/broker.
    redis_url: str = Field(default="", alias="REDIS_URL")
    sms_provider: Literal["console", "twilio"] = Field(default="console", alias="SMS_PROVIDER")
    twilio_account_sid: str = Field(default="", alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: str = Field(default="", alias="TWILIO_AUTH_TOKEN")
    # A Twilio-compatible API (SignalWire's LaML endpoint, or a test double) instead of
    # api.twilio.com.
    twilio_api_base_url: str = Field(default="", alias="TWILIO_API_BASE_URL")
    # The URL the provider reaches us at. Signatures are computed by Twilio over this URL,
    # not over whatever a reverse proxy hands Flask.
    public_base_url: str = Field(default="http://127.0.0.1:5000", alias="PUBLIC_BASE_URL")
    practices_file: str = Field(default="", alias="RECOVERY_PRACTICES_FILE")
    secret_key: str = Field(default="", alias="SECRET_KEY")
    webhook_secret: str = Field(default="", alias="WEBHOOK_SECRET")
    # WEBHOOK_SECRET acts on every practice, so with more than one practice it is refused
    # unless the operator says they are one organisation (services/webhook_secrets.py).
    webhook_secret_all_practices: bool = Field(default=False, alias="WEBHOOK_SECRET_ALL_PRACTICES")
    # Encrypt patients' words at rest: comma-separated Fernet keys, the first encrypts and
    # all decrypt (`recovery keys new` prints one; `recovery keys rotate` re-encrypts).
    phi_encryption_keys: str = Field(default="", alias="PHI_ENCRYPTION_KEYS")
    # Before PHI_ENCRYPTION_KEYS the key was derived from this (or SECRET_KEY): still
    # accepted to decrypt, never to encrypt, until switched off below after a rotate.
    phi_encryption_key: str = Field(default="", alias="PHI_ENCRYPTION_KEY")
    phi_legacy_key: bool = Field(default=True, alias="RECOVERY_PHI_LEGACY_KEY")
    port: int = Field(default=5000, alias="PORT")
    var_dir: Path = Field(default=DEFAULT_VAR_DIR, alias="RECOVERY_VAR_DIR")

    # How long a pending text may wait for its queued task before the sweeper sends it anyway.
    sweep_grace_s: float = Field(default=3.0, alias="RECOVERY_SWEEP_GRACE_S")
    # How often the sweeper (and the escalations, breaches and dead letters) run: a dead
    # worker's lapsed lease is found this soon after it lapses.
    sweep_interval_s: float = Field(default=1.0, alias="RECOVERY_SWEEP_INTERVAL_S")
    # How often episodes past their reply window are closed and follow-up nudges go out.
    follow_up_interval_s: float = Field(default=60.0, alias="RECOVERY_FOLLOW_UP_INTERVAL_S")
    # How long we wait for the provider's answer to one request. Twilio answers in well
    # under a second; a request that takes longer is not given up on blindly: the text is
    # "in doubt" and the provider is asked whether it went out before any re-send. Short,
    # because a timed-out text then waits as long again before it is asked about.
    provider_timeout_s: float = Field(default=3.0, gt=0, alias="RECOVERY_PROVIDER_TIMEOUT_S")
    # A worker's claim on a text is a lease this long, renewed every third of it while its
    # send is in flight; a dead worker's lease lapses at most this long after it died, and
    # the sweeper (every RECOVERY_SWEEP_INTERVAL_S) hands its texts on: lease + sweep, 5 s,
    # well inside the ten seconds a killed worker's texts must go out in. Longer than the
    # provider timeout, so a live worker's single request never outlasts its lease even
    # unrenewed (a request starts as its claim commits, or just after a renewal).
    claim_lease_s: float = Field(default=4.0, gt=0, alias="RECOVERY_CLAIM_LEASE_S")
    # Transient provider failures are retried until the text is this old, then recorded failed.
    send_deadline_s: float = Field(default=6 * 3600.0, alias="RECOVERY_SEND_DEADLINE_S")
    # GET /metrics: with a token, only `Authorization: Bearer <token>`; without one, only
    # clients on this machine that came through no proxy.
    metrics_token: str = Field(default="", alias="RECOVERY_METRICS_TOKEN")
    send_max_attempts: int = Field(default=10, ge=1, alias="RECOVERY_SEND_MAX_ATTEMPTS")
    # Automated texts (first texts, nudges) to one number from one practice: the FCC
    # healthcare exemption's one a day and three a week.
    cap_per_day: int = Field(default=1, ge=1, alias="RECOVERY_CAP_PER_DAY")
    cap_per_week: int = Field(default=3, ge=1, alias="RECOVERY_CAP_PER_WEEK")
    # How long a webhook waits for a database that is away (restarting, failing over)
    # before it answers 503. Twilio gives a webhook 15 s in all and by default does not
    # retry a 5xx, so a missed call that failed would be a patient never called back; a
    # PostgreSQL restart takes a second or two, and a webhook rides it out.
    database_wait_s: float = Field(default=8.0, ge=0, alias="RECOVERY_DATABASE_WAIT_S")
    # How long a web process remembers which practice owns a number (0: ask the database
    # on every webhook); an edited practices file reaches running web processes this late.
    practice_cache_s: float = Field(default=30.0, alias="RECOVERY_PRACTICE_CACHE_S")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    # Tests of the whole stack only: a file holding seconds added to every process's clock.
    test_clock_file: Path | None = Field(default=None, alias="RECOVERY_TEST_CLOCK_FILE")

    # Staff sessions: signed out after this long without a request (a screen left open at
    # the front desk), and in any case this long after signing in.
    session_idle_s: int = Field(default=15 * 60, alias="RECOVERY_SESSION_IDLE_S")
    session_max_s: int = Field(default=12 * 3600, alias="RECOVERY_SESSION_MAX_S")
    # How long after Complete or Mark booked its Undo button works (0: no undo).
    undo_window_s: float = Field(default=300.0, ge=0, alias="RECOVERY_UNDO_WINDOW_S")
    # The leak audit's upload: a bigger call log is refused (413) before it is read.
    audit_max_mb: int = Field(default=100, gt=0, alias="RECOVERY_AUDIT_MAX_MB")
    # Failed sign-ins allowed per account and per client address (limits' syntax).
    signin_limit_account: str = Field(default="10/15minutes", alias="RECOVERY_SIGNIN_LIMIT_ACCOUNT")
    signin_limit_address: str = Field(default="50/15minutes", alias="RECOVERY_SIGNIN_LIMIT_ADDRESS")

    @model_validator(mode="after")
    def _lease_outlasts_a_request(self) -> Settings:
        if self.claim_lease_s <= self.provider_timeout_s:
            raise ValueError(
                "RECOVERY_CLAIM_LEASE_S must be longer than RECOVERY_PROVIDER_TIMEOUT_S"
            )
        return self

    @field_validator("public_base_url", "twilio_api_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            url = make_url(
                # Heroku-style URLs say postgres://, a name SQLAlchemy no longer accepts.
                "postgresql://" + self.database_url[len("postgres://") :]
                if self.database_url.startswith("postgres://")
                else self.database_url
            )
            if url.drivername == "postgresql":
                # psycopg2 is the driver we ship (psycopg2-binary); SQLAlchemy 2.1 made
                # psycopg 3 the default for a URL that names none.
                url = url.set(drivername="postgresql+psycopg2")
            return url.render_as_string(hide_password=False)
        return f"sqlite:///{(self.var_dir / 'recovery.db').resolve()}"

    @property
    def phi_keys(self) -> list[str]:
        return [k.strip() for k in self.phi_encryption_keys.split(",") if k.strip()]

    @property
    def phi_legacy_secrets(self) -> list[str]:
        """The secret(s) the old derived key came from, while it is still accepted."""
        if not self.phi_legacy_key:
            return []
        secret = self.phi_encryption_key or self.secret_key
        return [secret] if secret else []

    @property
    def uses_embedded_broker(self) -> bool:
        return not self.redis_url

    @property
    def broker_dir(self) -> Path:
        return (self.var_dir / "broker").resolve()
