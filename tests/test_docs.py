"""The README documents every setting the code reads."""

from pathlib import Path

import pytest

from assist.config import ENVIRONMENT

README = (Path(__file__).parents[1] / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(ENVIRONMENT))
def test_every_environment_variable_is_in_the_readme_table(name):
    assert f"| `{name}` |" in README
