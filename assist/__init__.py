"""The contact bot and agent-assist service of the incident team.

The core (assist.*) needs no web framework; the web app is made by assist.web.app.create_app.
Importing this package loads nothing else.
"""
