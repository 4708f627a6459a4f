"""The RQ worker that runs the service's jobs."""

from flask import Flask
from rq import SimpleWorker

from assist import queues


class AppWorker(SimpleWorker):
    """Run each job in a fresh app context of one long-lived app, in this process.

    SimpleWorker (no fork per job) keeps the app, its database pool and the
    Twilio client warm; a job's own app context gives it a fresh DB session.
    """

    def __init__(self, *args, app: Flask, **kwargs):
        super().__init__(*args, **kwargs)
        self.app = app

    def execute_job(self, job, queue):
        with self.app.app_context():
            return super().execute_job(job, queue)


def make_worker(app: Flask) -> AppWorker:
    with app.app_context():
        return AppWorker(queues.queues(), connection=queues.connection(), app=app)
