"""The cluster's entry points and packaging: deploy/rayservice.yaml is a Serve config naming the
package's builders, ray stays an optional extra that the single server never imports."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from typing import Any

import pytest
import yaml

from tests.support import ROOT
from wirescribe.settings import Settings

tomllib = pytest.importorskip("tomllib")


def rayservice() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "deploy" / "rayservice.yaml").read_text())
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayService"
    return dict(doc)


def serve_config() -> dict[str, Any]:
    return dict(yaml.safe_load(rayservice()["spec"]["serveConfigV2"]))


def test_the_rayservice_names_the_entry_points() -> None:
    apps = {a["name"]: a for a in serve_config()["applications"]}
    assert apps["wirescribe-model"]["import_path"] == "wirescribe.cluster.serve:model_app"
    assert apps["wirescribe-model"]["route_prefix"] is None  # reached through its handle only
    assert apps["wirescribe"]["import_path"] == "wirescribe.cluster.serve:ingress_app"
    assert apps["wirescribe"]["route_prefix"] == "/"
    assert [d["name"] for d in apps["wirescribe"]["deployments"]] == ["Ingress"]
    assert "request_timeout_s" not in serve_config()["http_options"]  # a session is one long request
    pinned = re.search(r"^ray==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)
    assert pinned is not None
    assert rayservice()["spec"]["rayClusterConfig"]["rayVersion"] == pinned[1]  # the Ray tested
    assert f"FROM rayproject/ray:{pinned[1]}-" in (ROOT / "deploy" / "Dockerfile").read_text()


def test_the_rayservice_settings_are_valid() -> None:
    known = set(re.findall(r'"((?:SERVE_)?[A-Z_]+)"', (ROOT / "wirescribe" / "settings.py").read_text()))
    applications = serve_config()["applications"]
    assert applications
    for app in applications:
        env = app["runtime_env"]["env_vars"]
        assert all(name.removeprefix("STT_") in known for name in env), sorted(env)
        settings = Settings.from_env(env)  # raises on a bad value
        assert settings.cluster.app_name == "wirescribe"


def test_the_serve_config_validates_and_imports() -> None:
    schema = pytest.importorskip("ray.serve.schema")
    config = schema.ServeDeploySchema.model_validate(serve_config())
    assert config.applications
    for app in config.applications:
        module, _, name = app.import_path.partition(":")
        builder = getattr(importlib.import_module(module), name)
        assert callable(builder)
    from ray.serve import Application

    from wirescribe.cluster.serve import ingress_app, model_app

    assert isinstance(model_app({}), Application) and isinstance(ingress_app(), Application)
    with pytest.raises(ValueError, match="STT_"):
        ingress_app({"max_sessions": 3})


def test_the_cluster_extra_is_the_makefiles_and_the_dev_requirement() -> None:
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (cluster,) = extra["cluster"]
    assert cluster in extra["dev"]
    assert f"CLUSTER_REQ := {cluster}" in (ROOT / "Makefile").read_text()


def test_the_single_server_never_imports_ray() -> None:
    code = "import sys, server, wirescribe.cli.serve, wirescribe.cluster.plan, wirescribe.cluster.remote; "
    code += "assert 'ray' not in sys.modules, 'ray imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
