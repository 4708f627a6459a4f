"""The playbooks shipped as defaults; installed as the package data of assist.default_playbooks."""
