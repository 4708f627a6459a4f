"""The Procfile's apps, from the checkout (installed: `assist.wsgi:app` and `assist.wsgi:events_app`)."""

from assist import wsgi


def __getattr__(name: str):
    return getattr(wsgi, name)
