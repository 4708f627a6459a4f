"""The app factory: settings, the runtime (database, Redis, clock), security headers, CSRF, logins and their
limits, blueprints and the CLI."""

import logging
import os
from collections.abc import Collection, Mapping
from typing import Literal

from flask import Flask, appcontext_pushed, g, jsonify
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import text
from werkzeug.middleware.proxy_fix import ProxyFix

from assist import db, events, runtime
from assist.settings import Settings

csrf = CSRFProtect()

# What an app serves: "web" the webhooks, console pages and API (short requests, on threads); "events" the
# consoles' live streams (/events, long connections, on gevent). Production runs each in its own process (the
# Procfile); the demo and the tests serve both from one app.
Part = Literal["web", "events"]


def create_app(test_config: dict | None = None, *, environ: Mapping[str, str] | None = None,
               clock=None, parts: Collection[Part] = ("web", "events")) -> Flask:
    """Create the app serving parts (and /healthz) from the environment (environ replaces os.environ; tests
    pass their own), then test_config (Flask's own settings); clock replaces the system clock.

    Raises:
        ConfigError: a setting is missing or invalid (one line per problem).
    """
    from assist.clock import SYSTEM
    from assist.web import (
        access_log,
        admin,
        api,
        attention,
        auth,
        claims,
        console,
        dashboard,
        error_pages,
        files,
        headers,
        live,
        playbooks,
        redactions,
        reviews,
        sandbox,
        sms,
        summary,
        throttle,
        timeline,
        timing,
        tokens,
        voice,
    )
    from assist.web.helpers import IdConverter
    from assist.web.sanitize import sanitized_html
    from assist.web.urls import url_builder

    settings = Settings.from_environ(os.environ if environ is None else environ).with_secret_key()
    app = Flask("assist", instance_path=str(settings.instance_path), instance_relative_config=True)
    app.url_map.converters["int"] = IdConverter  # before any route is added
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_SECURE=settings.https, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.https, REMEMBER_COOKIE_HTTPONLY=True,
    )
    if test_config:
        app.config.update(test_config)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)  # it logs every request at INFO
    if settings.trusted_proxies:
        # Twilio signs the public URL: behind a proxy, scheme and host come from X-Forwarded-*.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]  # Flask documents this way of adding middleware
            app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n)

    rt = runtime.Runtime(settings=settings, sessions=db.sessions_for(settings.database_url), clock=clock or SYSTEM,
                         url_builder=url_builder(app))
    app.extensions["runtime"] = rt
    _bind_runtime_to_app_contexts(app, rt)

    headers.init_app(app)
    csrf.init_app(app)
    auth.login_manager.init_app(app)
    if "web" in parts:
        throttle.limiter.init_app(app)
        # Webhooks are authenticated by Twilio's signature and the API by tokens, not by cookies.
        for blueprint in (sms.bp, voice.bp, api.bp):
            csrf.exempt(blueprint)
            app.register_blueprint(blueprint)
        for blueprint in (auth.bp, console.bp, claims.bp, files.bp, admin.bp, playbooks.bp, dashboard.bp,
                          attention.bp, tokens.bp, access_log.bp, redactions.bp, reviews.bp, summary.bp):
            app.register_blueprint(blueprint)
        if settings.sandbox:
            app.register_blueprint(sandbox.bp)
            csrf.exempt(sandbox.bp)  # the fake of Twilio's REST API: basic auth, as Twilio's
        app.config["TWILIO_SANDBOX"] = settings.sandbox  # the top bar links the sandbox's outbox
        error_pages.init_app(app)
        app.add_template_filter(sanitized_html, "sanitized_html")
        timing.init_app(app)
        timeline.init_app(app)
    if "events" in parts:
        app.register_blueprint(live.bp)
        app.extensions["live_relay"] = events.Relay(rt.redis)

    @app.get("/healthz")
    def healthz():
        db.session().execute(text("SELECT 1"))
        runtime.current().redis().ping()
        return jsonify(status="ok")

    return app


def _bind_runtime_to_app_contexts(app: Flask, rt: runtime.Runtime) -> None:
    """Every app context of this app (a request, a CLI command, a job of the worker) runs with its runtime
    bound, and a database session of its own that closes with it."""

    def pushed(sender, **_):
        g._assist_runtime = runtime.push(rt)

    def teardown(_exc):
        token = g.pop("_assist_runtime", None)
        if token is not None:
            runtime.pop(token)

    appcontext_pushed.connect(pushed, app, weak=False)
    app.teardown_appcontext(teardown)
