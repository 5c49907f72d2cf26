"""The installed extender serves HTTPS from the mounted Secret, mounted so renewals reach it."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from extender.config import ENV_PREFIX, ExtenderConfig
from shared.config import load_config

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests" / "extender"


def test_config_points_at_the_mounted_tls_secret() -> None:
    config = load_config(ExtenderConfig, MANIFESTS / "config.yaml", {}, env_prefix=ENV_PREFIX)
    deployment: dict[str, Any] = yaml.safe_load((MANIFESTS / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volume = next(v for v in pod["volumes"] if v["name"] == "tls")
    mount = next(m for m in container["volumeMounts"] if m["name"] == "tls")
    assert "subPath" not in mount  # kubelet does not update subPath mounts on renewal
    files = {str(PurePosixPath(mount["mountPath"]) / item["path"]) for item in volume["secret"]["items"]}
    assert config.server.tls_cert_file in files
    assert config.server.tls_key_file in files
    assert config.server.tls_cert_file != config.server.tls_key_file
    assert 0 < config.server.tls_reload_interval <= 60
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
