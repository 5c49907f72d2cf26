"""Structured logs: one JSON object per line on stdout with stable keys."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import structlog

from shared import logs
from shared.logs import configure_logging, get_logger

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    logs._configured = None


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_json_lines_with_stable_keys(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("launcher", level="info", fmt="json", force=True)
    log = get_logger("jitnode.test", nodepool="default")
    log.info("nodeclaim launched", nodeclaim="default-abc", instance_id="i-123")
    log.debug("not shown")
    records = lines(capsys)
    assert len(records) == 1
    record = records[0]
    assert list(record)[:4] == ["ts", "level", "component", "event"]
    assert record["level"] == "info"
    assert record["component"] == "launcher"
    assert record["event"] == "nodeclaim launched"
    assert record["nodepool"] == "default"
    assert record["nodeclaim"] == "default-abc"
    assert record["instance_id"] == "i-123"
    assert record["logger"] == "jitnode.test"
    assert TS.fullmatch(str(record["ts"]))
    when = datetime.strptime(str(record["ts"]), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - when) < timedelta(seconds=10)


def test_exceptions_stdlib_and_context(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("extender", level="debug", force=True)
    structlog.contextvars.bind_contextvars(pod="ns/web-1")
    log = get_logger(__name__)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("filter failed", node="n1")
    logging.getLogger("aiohttp.server").warning("connection %s reset", "c1")
    log.warning("odd value", value=object(), raw=b"bytes")
    records = lines(capsys)
    assert [r["level"] for r in records] == ["error", "warning", "warning"]
    assert "RuntimeError: boom" in str(records[0]["exception"])
    assert records[0]["pod"] == "ns/web-1"
    assert records[0]["node"] == "n1"
    assert records[1]["event"] == "connection c1 reset"
    assert records[1]["logger"] == "aiohttp.server"
    assert records[1]["component"] == "extender"
    assert str(records[2]["value"]).startswith("<object")


def test_level_from_env_and_noisy_libraries(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    configure_logging("launcher", force=True)
    get_logger().info("hidden")
    get_logger().warning("shown")
    logging.getLogger("botocore.credentials").warning("boto warns")
    assert [r["event"] for r in lines(capsys)] == ["shown", "boto warns"]
    configure_logging("launcher", level="info", force=True)
    logging.getLogger("botocore.hooks").info("chatty")
    assert lines(capsys) == []


def test_console_format(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("extender", fmt="console", force=True)
    get_logger("x").info("hello world", pod="ns/p")
    out = capsys.readouterr().out
    assert "hello world" in out
    assert "pod=ns/p" in out
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(out.splitlines()[0])


def test_configure_once_and_rejects_bad_values(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("first", force=True)
    configure_logging("second", fmt="console")  # ignored: already configured
    get_logger().info("which")
    assert lines(capsys)[0]["component"] == "first"
    with pytest.raises(ValueError, match="log level"):
        configure_logging("x", level="loud")
    with pytest.raises(ValueError, match="log format"):
        configure_logging("x", fmt="xml")
