"""The embedded Redis of the demo (no REDIS_URL): it keeps its data across restarts and stops when closed."""

import logging

from processes import alive

from assist import background
from assist.settings import Settings


def test_the_embedded_redis_saves_its_data_and_stops_when_closed(tmp_path, caplog):
    settings = Settings.from_environ({"INSTANCE_PATH": str(tmp_path)})
    connection = background.connect(settings)
    pid = connection.server.pid
    connection.set("assist:kept", "a queued job")
    with caplog.at_level(logging.WARNING, logger="assist.background"):
        background.close(connection)
    assert not alive(pid)
    assert "did not stop" not in caplog.text  # it shut itself down, saving; it was not killed

    again = background.connect(settings)
    try:
        assert again.get("assist:kept") == b"a queued job"
    finally:
        background.close(again)
