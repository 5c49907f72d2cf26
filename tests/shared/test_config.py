"""Service configuration: file < environment < flags, typed, with field paths in errors."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from shared.config import Seconds, build_arg_parser, config_from_args, load_config, settings
from shared.errors import ValidationError


class Mode(enum.Enum):
    FAST = "fast"
    SAFE = "safe"


@dataclass(frozen=True)
class Server:
    host: str = "127.0.0.1"
    port: int = field(default=8443, metadata={"help": "listen port"})
    tls: bool = False


@dataclass(frozen=True)
class Sample:
    cluster: str
    server: Server = field(default_factory=Server)
    timeout: Seconds = 1.0
    zones: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    ratio: float = 0.5
    level: Literal["low", "high"] = "low"
    mode: Mode = Mode.SAFE
    limit: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.ratio <= 1:
            raise ValueError("ratio must be within 0..1")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_defaults_and_required() -> None:
    config = load_config(Sample, None, {}, {"cluster": "c1"})
    assert config == Sample(cluster="c1")
    with pytest.raises(ValidationError) as info:
        load_config(Sample, None, {}, {})
    assert [str(e) for e in info.value.errors] == ["cluster: required"]


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "cluster: prod\nserver:\n  port: 9000\n  host: 0.0.0.0\ntimeout: 50ms\nzones: [us-east-1a]\n"
        "tags: {team: infra}\nmode: fast\n",
    )
    env = {
        "JITNODE_SERVER_PORT": "9100",
        "JITNODE_ZONES": "a, b,,c",
        "JITNODE_SERVER_TLS": "yes",
        "OTHER": "x",
    }
    config = load_config(Sample, path, env, {"server.port": "9200", "limit": None})
    assert config.cluster == "prod"
    assert config.server == Server(host="0.0.0.0", port=9200, tls=True)
    assert config.timeout == pytest.approx(0.05)
    assert config.zones == ("a", "b", "c")
    assert config.tags == {"team": "infra"}
    assert config.mode is Mode.FAST
    assert config.limit is None


def test_env_conversions_and_prefix() -> None:
    env = {
        "SVC_CLUSTER": "c",
        "SVC_TIMEOUT": "1m30s",
        "SVC_TAGS": "a=1,b=2",
        "SVC_RATIO": "0.25",
        "SVC_LIMIT": "7",
        "SVC_LEVEL": "high",
        "JITNODE_CLUSTER": "ignored",
    }
    config = load_config(Sample, None, env, env_prefix="SVC_")
    assert (config.cluster, config.timeout, config.tags) == ("c", 90.0, {"a": "1", "b": "2"})
    assert (config.ratio, config.limit, config.level) == (0.25, 7, "high")
    assert load_config(Sample, None, {"SVC_CLUSTER": "c", "SVC_LIMIT": ""}, env_prefix="SVC_").limit is None


def test_all_problems_reported_with_paths_and_sources(tmp_path: Path) -> None:
    path = write(tmp_path, "cluster: 3\nserver:\n  port: http\n  prot: 1\nbogus: true\nlevel: medium\n")
    env = {"JITNODE_TIMEOUT": "soon", "JITNODE_SERVER_TLS": "maybe"}
    with pytest.raises(ValidationError) as info:
        load_config(Sample, path, env, {"mode": "turbo", "nope": 1})
    messages = {e.path: e.message for e in info.value.errors}
    assert set(messages) == {
        "cluster",
        "server.port",
        "server.prot",
        "bogus",
        "level",
        "timeout",
        "server.tls",
        "mode",
        "nope",
    }
    assert "is not an integer" in messages["server.port"]
    assert str(path) in messages["server.port"]
    assert "JITNODE_TIMEOUT" in messages["timeout"]
    assert "--mode" in messages["mode"]
    assert messages["nope"] == "unknown setting"
    assert "must be one of low, high" in messages["level"]


def test_post_init_errors_become_validation_errors() -> None:
    with pytest.raises(ValidationError, match="ratio must be within"):
        load_config(Sample, None, {}, {"cluster": "c", "ratio": "2"})


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read config file"):
        load_config(Sample, tmp_path / "missing.yaml", {})
    with pytest.raises(ValidationError, match="must hold a mapping"):
        load_config(Sample, write(tmp_path, "- a\n"), {})
    with pytest.raises(ValidationError, match="expected a section"):
        load_config(Sample, write(tmp_path, "cluster: c\nserver: 1\n"), {})


def test_settings_walk() -> None:
    paths = [s.path for s in settings(Sample)]
    assert paths[:4] == ["cluster", "server.host", "server.port", "server.tls"]
    port = next(s for s in settings(Sample) if s.path == "server.port")
    assert (port.flag, port.env_name("X_"), port.help) == ("--server-port", "X_SERVER_PORT", "listen port")


def test_arg_parser_and_config_from_args(tmp_path: Path) -> None:
    parser = build_arg_parser(Sample, prog="svc")
    help_text = parser.format_help()
    assert "--server-port" in help_text
    assert "JITNODE_SERVER_PORT" in help_text
    assert "--no-server-tls" in help_text
    assert vars(parser.parse_args([])) == {"config": None}  # unset flags don't override lower layers
    path = write(tmp_path, "cluster: fromfile\nserver: {port: 1}\n")
    config = config_from_args(
        Sample,
        ["--server-port", "2", "--server-tls", "--zones", "x,y", "--timeout", "2s"],
        {"JITNODE_CONFIG": str(path), "JITNODE_SERVER_PORT": "3"},
    )
    assert (config.cluster, config.server.port, config.server.tls) == ("fromfile", 2, True)
    assert (config.zones, config.timeout) == (("x", "y"), 2.0)
    with pytest.raises(
        ValidationError, match=r"server\.port: 'x' is not an integer \(from flag --server-port\)"
    ):
        config_from_args(Sample, ["--server-port", "x", "--cluster", "c"], {})
