"""The README documents every setting the code reads."""

from pathlib import Path

import pytest

from assist.config import ENVIRONMENT

README = (Path(__file__).parents[1] / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(ENVIRONMENT))
def test_every_environment_variable_is_in_the_readme_table(name):
    assert f"| `{name}` |" in README


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def test_production_names_every_process_and_what_they_need():
    production = section("Production")
    for needed in ("assist worker", "assist smtp", "assist.wsgi:app", "SMTP_RELAY", "SECRET_KEY", "TWILIO_AUTH_TOKEN",
                   "REDIS_URL", "DATABASE_URL", "PUBLIC_BASE_URL", "assist db upgrade"):
        assert needed in production, needed
    procfile = (Path(__file__).parents[1] / "Procfile").read_text()
    assert {line.split(":")[0] for line in procfile.splitlines() if line} == {"web", "worker", "smtp"}


def test_running_the_tests_names_the_test_services_and_warns_about_the_flush():
    text = " ".join(README.split())
    assert "TEST_REDIS_URL" in text and "TEST_POSTGRES_URL" in text
    assert "flushed by every test" in text
