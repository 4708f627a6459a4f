"""The contact bot and agent-assist service of the incident team.

The web app is made by assist.app.create_app; importing this package loads nothing else.
"""
