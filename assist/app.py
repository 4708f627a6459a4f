"""The app factory: settings, database, Redis, CSRF, logins, blueprints and the CLI, wired into one Flask app."""

import logging
from collections.abc import Mapping
import os

from flask import Flask, jsonify
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import text
from werkzeug.middleware.proxy_fix import ProxyFix

csrf = CSRFProtect()


def create_app(test_config: dict | None = None, *, environ: Mapping[str, str] | None = None,
               clock=None) -> Flask:
    """Create the web app: defaults, then the environment, then test_config.

    environ replaces os.environ (tests pass their own mapping); clock replaces the system clock.

    Raises:
        config.ConfigError: a setting is missing or invalid.
    """
    from assist import api, auth, cli, clock as clocks, config, db, ingest, live, outbound, queues, sandbox
    from assist.web import admin, console, dashboard, playbooks as playbook_pages, voice
    from channels import sms

    environ = os.environ if environ is None else environ
    instance = config.instance_path(environ)
    app = Flask(__name__, instance_path=instance, instance_relative_config=True)
    app.config.update(config.load(instance, environ))
    if test_config:
        app.config.update(test_config)
    app.extensions["clock"] = clock or clocks.SYSTEM
    logging.basicConfig(level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)  # it logs every request at INFO
    if app.config["TRUSTED_PROXIES"]:
        # Twilio signs the public URL: behind a proxy, scheme and host come from X-Forwarded-*.
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n)

    db.init_app(app)
    queues.init_app(app)
    csrf.init_app(app)
    auth.login_manager.init_app(app)

    def ingest_message(message):
        return ingest.ingest(db.session(), message)

    def record_status(report):
        outbound.record_delivery_status(db.session(), report)

    sms_bp = sms.create_blueprint(ingest=ingest_message, record_status=record_status)
    # Webhooks are authenticated by Twilio's signature and the API by tokens, not by cookies.
    for blueprint in (sms_bp, voice.bp, api.bp):
        csrf.exempt(blueprint)
        app.register_blueprint(blueprint)
    app.register_blueprint(auth.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(playbook_pages.bp)
    app.register_blueprint(live.bp)
    app.register_blueprint(dashboard.bp)
    if app.config["TWILIO_SANDBOX"]:
        app.register_blueprint(sandbox.bp)
        csrf.exempt(sandbox.bp)  # the fake of Twilio's REST API: basic auth, as Twilio's

    cli.init_app(app)
    from assist.web.sanitize import sanitized_html

    app.add_template_filter(sanitized_html, "sanitized_html")

    @app.get("/healthz")
    def healthz():
        db.session().execute(text("SELECT 1"))
        queues.connection().ping()
        return jsonify(status="ok")

    return app

