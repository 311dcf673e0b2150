"""Exit 0 if this checkout is already installed (editable) with every requirement of pyproject.toml
(runtime deps + the dev and models extras) satisfied; exit 1 otherwise. Lets .ci/run skip pip
when nothing changed. It checks pyproject.toml itself, not the installed metadata, so a newly
added dependency triggers a reinstall.
"""

import json
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("dev", "models")


def unsatisfied() -> list[str]:
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [r for extra in EXTRAS for r in project["optional-dependencies"][extra]]
    missing = []
    for line in wanted:
        requirement = Requirement(line)
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            version = None
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            missing.append(f"{line} (installed: {version})")
    return missing


def installed_here() -> bool:
    direct_url = json.loads(metadata.distribution("specdec_lite").read_text("direct_url.json") or "{}")
    return direct_url.get("dir_info", {}).get("editable", False) and direct_url.get("url") == ROOT.as_uri()


if __name__ == "__main__":
    try:
        missing = unsatisfied()
        here = installed_here()
    except Exception as error:  # noqa: BLE001 - anything odd means: let pip decide
        print(f"install check: {type(error).__name__}: {error}")
        sys.exit(1)
    for line in missing:
        print(f"install check: needs {line}")
    if not here:
        print(f"install check: specdec_lite is not installed in editable mode from {ROOT}")
    sys.exit(0 if here and not missing else 1)
