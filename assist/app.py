"""The contact bot and agent-assist service of the incident team."""

import logging
import os

from flask import Flask, jsonify
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import text
from werkzeug.middleware.proxy_fix import ProxyFix

csrf = CSRFProtect()


def create_app(test_config: dict | None = None) -> Flask:
    """Create the web app: defaults, then the environment, then test_config."""
    from assist import api, auth, cli, config, db, ingest, live, outbound, queues, sandbox
    from assist.web import admin, console, dashboard, playbooks as playbook_pages
    from assist import calls
    from channels import sms, voice

    app = Flask(__name__, instance_path=_absolute(os.environ.get("INSTANCE_PATH")), instance_relative_config=True)
    app.config.update(config.load(app.instance_path))
    if test_config:
        app.config.update(test_config)
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
    voice_bp = voice.create_blueprint(triage_call=calls.triage_call, call_event=calls.call_event)
    # Webhooks are authenticated by Twilio's signature and the API by tokens, not by cookies.
    for blueprint in (sms_bp, voice_bp, api.bp):
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
        csrf.exempt(sandbox.create_message)

    cli.init_app(app)
    from assist.web.sanitize import sanitized_html

    app.add_template_filter(sanitized_html, "sanitized_html")

    @app.get("/healthz")
    def healthz():
        db.session().execute(text("SELECT 1"))
        queues.connection().ping()
        return jsonify(status="ok")

    return app


def _absolute(path: str | None) -> str | None:
    return os.path.abspath(path) if path else None
