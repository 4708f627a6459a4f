"""The README documents every setting the code reads, and the processes production runs."""

import re
from pathlib import Path

from assist.settings import Settings, markdown_table

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_the_readme_configuration_table_is_the_one_generated_from_the_settings():
    table = re.search(r"<!-- generated from assist/settings.py[^\n]*-->\n(.*?)\n<!-- end of the generated table -->",
                      README, re.DOTALL)
    assert table is not None, "the README lost its generated table's markers"
    assert table.group(1) == markdown_table(), "regenerate it: assist settings --table"


def test_the_table_has_one_row_per_setting_with_a_description():
    rows = markdown_table().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == [name.upper() for name in Settings.model_fields]
    assert all(field.description for field in Settings.model_fields.values())


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def test_production_names_every_process_and_what_they_need():
    production = section("Production")
    for needed in ("assist worker", "assist smtp", "assist.wsgi:app", "assist.wsgi:events_app", "SMTP_RELAY",
                   "SECRET_KEY", "TWILIO_AUTH_TOKEN", "REDIS_URL", "DATABASE_URL", "PUBLIC_BASE_URL",
                   "assist db upgrade"):
        assert needed in production, needed
    procfile = (Path(__file__).parents[1] / "Procfile").read_text()
    processes = {line.split(":")[0] for line in procfile.splitlines() if line and not line.startswith("#")}
    assert processes == {"web", "events", "worker", "smtp"}


def test_running_the_tests_names_the_test_services_and_warns_about_the_flush():
    text = " ".join(README.split())
    assert "TEST_REDIS_URL" in text and "TEST_POSTGRES_URL" in text
    assert "flushed by every test" in text
