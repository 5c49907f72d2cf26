"""``python -m extender``: configuration from file, environment and flags; bad settings exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from extender.__main__ import main
from extender.config import ENV_PREFIX, ExtenderConfig
from shared.config import config_from_args


def test_flags_override_env_override_file(tmp_path: Path) -> None:
    path = tmp_path / "extender.yaml"
    path.write_text("server: {port: 1000, prefix: /a}\nprediction: {headroom: 3}\n")
    env = {f"{ENV_PREFIX}SERVER_PORT": "2000", f"{ENV_PREFIX}STREAM_HEARTBEAT": "250ms"}
    config = config_from_args(
        ExtenderConfig, ["--config", str(path), "--server-port", "3000"], env, env_prefix=ENV_PREFIX
    )
    assert config.server.port == 3000
    assert config.server.prefix == "/a"
    assert config.prediction.headroom == 3
    assert config.stream.heartbeat == pytest.approx(0.25)


def test_bad_setting_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--server-port", "eighty"]) == 2
    assert "server.port" in capsys.readouterr().err
