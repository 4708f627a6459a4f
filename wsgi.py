"""The Procfile's web app, from the checkout (installed: `gunicorn assist.wsgi:app`)."""

from assist.wsgi import app

__all__ = ["app"]
