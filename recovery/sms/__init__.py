"""SMS providers behind one port (`base.SmsProvider`); `make_provider` picks one from Settings."""

from __future__ import annotations

from recovery.config import Settings
from recovery.sms.base import SmsProvider


def make_provider(settings: Settings) -> SmsProvider:
    if settings.sms_provider == "twilio":
        from recovery.sms.twilio import TwilioProvider

        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            raise ValueError("SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        return TwilioProvider(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            api_base_url=settings.twilio_api_base_url,
            timeout_s=settings.provider_timeout_s,
        )
    from recovery.crypto import MissingKey
    from recovery.sms.console import ConsoleProvider, outbox_key

    if not settings.phi_keys:
        raise MissingKey("SMS_PROVIDER=console needs PHI_ENCRYPTION_KEYS (`recovery keys new`)")
    return ConsoleProvider(settings.var_dir / "outbox.jsonl", key=outbox_key(settings.phi_keys[0]))
