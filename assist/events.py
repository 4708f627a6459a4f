"""Live events: what changed, published on Redis pub/sub for every console (assist/web/live.py relays them).

Any process (web, worker) publishes; every web process relays to its own browsers, so updates reach
every console whichever process handled the message.
"""

import json

from assist import background

CHANNEL = "console:events"


def publish(kind: str, **data) -> None:
    """Tell every console something changed (ids only: the browser fetches what it may see)."""
    background.connection().publish(CHANNEL, json.dumps({"kind": kind, **data}))
