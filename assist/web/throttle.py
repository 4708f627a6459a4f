"""Failed logins limited per account and per client address: Flask-Limiter, counting on the runtime's Redis.

Only failures count (a 401 from the login form): once an account or an address has used up its failures,
every login attempt for it is refused with 429, even with the right password, until the window passes.
"""

import hashlib
import time

import redis
from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits.storage import Storage

from assist import runtime

# Fixed-window counters: INCRBY, and the window's expiry set by the first hit (EXPIRE NX needs Redis 7;
# the embedded Redis is 6.2).
_INCREMENT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[2])
if count == tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""
PREFIX = "limits:"


class RuntimeRedisStorage(Storage):
    """limits' storage on the bound runtime's Redis: REDIS_URL, or the embedded Redis, whose socket is known only
    once it has started (so no `redis+unix://` URI can name it when the app is created)."""

    STORAGE_SCHEME = ["assist-runtime"]

    @property
    def base_exceptions(self) -> type[Exception]:
        return redis.RedisError

    @staticmethod
    def _redis() -> redis.Redis:
        return runtime.current().redis()

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return int(self._redis().eval(_INCREMENT, 1, PREFIX + key, expiry, amount))  # type: ignore[arg-type]

    def get(self, key: str) -> int:
        return int(self._redis().get(PREFIX + key) or 0)  # type: ignore[arg-type]

    def get_expiry(self, key: str) -> float:
        return max(int(self._redis().ttl(PREFIX + key)), 0) + time.time()  # type: ignore[arg-type]

    def check(self) -> bool:
        try:
            return bool(self._redis().ping())
        except redis.RedisError:
            return False

    def reset(self) -> int | None:
        connection = self._redis()
        keys = list(connection.scan_iter(match=PREFIX + "*"))
        return int(connection.delete(*keys)) if keys else 0  # type: ignore[arg-type]

    def clear(self, key: str) -> None:
        self._redis().delete(PREFIX + key)


# Redis being down lets logins through unlimited (logged) rather than locking the whole team out.
limiter = Limiter(key_func=get_remote_address, storage_uri="assist-runtime://", strategy="fixed-window",
                  key_prefix="login", swallow_errors=True)


def failed(response) -> bool:
    """Whether a login answer counts against the limits: a wrong email or password."""
    return response.status_code == 401


def account() -> str:
    """The account a login attempt is for, hashed: emails stay out of Redis's keys."""
    email = request.form.get("email", "").strip().lower()
    return hashlib.sha256(email.encode()).hexdigest()


def per_account() -> str:
    settings = runtime.settings()
    return f"{settings.login_failures_per_account} per {settings.login_failure_window} seconds"


def per_address() -> str:
    settings = runtime.settings()
    return f"{settings.login_failures_per_address} per {settings.login_failure_window} seconds"


def failed_logins(view):
    """Refuse (429) a login once its account or its client address has used up its failures."""
    view = limiter.limit(per_account, key_func=account, methods=["POST"], deduct_when=failed, scope="account")(view)
    return limiter.limit(per_address, methods=["POST"], deduct_when=failed, scope="address")(view)
