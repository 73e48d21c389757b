"""The wheel's build hook: the prebuilt JupyterLab extension's ``package.json`` gets the
package's version, so that the version is written once (cull-idle's ``Cargo.toml``)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

INSTALLED = "share/jupyter/labextensions/cull-idle-sensor/package.json"


class LabExtensionVersion(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        package = json.loads((Path(self.root) / "labextension" / "package.json").read_text(encoding="utf-8"))
        package["version"] = self.metadata.version
        self._written = Path(tempfile.mkdtemp(prefix="cull-idle-sensor-build-"))
        written = self._written / "package.json"
        written.write_text(json.dumps(package, indent=2) + "\n", encoding="utf-8")
        build_data["shared_data"][str(written)] = INSTALLED

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        shutil.rmtree(self._written, ignore_errors=True)
