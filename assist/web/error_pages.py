"""Error pages: a person gets a page of the console, with its navigation, that says in words what went wrong and
never shows an exception; the programs that call the service (the JSON API, Twilio's webhooks, the sandbox's
fake of Twilio's API, the live stream, the health check) keep the answers they parse."""

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from assist import db

# Paths that answer programs: their errors stay as they are (the API's JSON, Werkzeug's plain answers).
FOR_PROGRAMS = ("/api/", "/twilio/", "/sandbox/twilio/2010-04-01/", "/events", "/healthz")

# What a person reads for the commonest errors: a title and a sentence (others show Werkzeug's).
IN_WORDS = {
    403: ("Not open to you", "Your role does not open this page. Ask a supervisor if your work needs it."),
    404: ("Not found", "There is no such page, or no case with that number that you may see."),
    500: ("Something went wrong", "The service could not finish this request. It has been logged: try again in a "
                                  "moment, and tell an admin if it keeps happening."),
}


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, error_page)


def error_page(error: HTTPException):
    """The console's page for error; the error itself (Werkzeug's answer) on the paths of programs."""
    if request.path.startswith(FOR_PROGRAMS):
        return error
    if isinstance(error, InternalServerError):
        # The request's transaction may have failed: the page still loads the user for the top bar.
        db.session().rollback()
    title, explanation = IN_WORDS.get(error.code or 500, (error.name, type(error).description))
    # What a view said with abort(code, "...") is for the person; an exception's text (a 500's) never is.
    own_words = error.description if error.description != type(error).description else None
    detail = None if isinstance(error, InternalServerError) else own_words
    return render_template("error.html", code=error.code, title=title, explanation=explanation,
                           detail=detail), error.code
