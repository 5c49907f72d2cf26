"""jitnode's services as real child processes, for tests that need real signals (rollouts).

Each process runs ``python -m extender|launcher --config FILE`` from the repository root with
its configuration written as YAML from the same dataclasses the service loads, and its JSON log
lines (stdout and stderr) going to a file the test reads afterwards. Processes are always
killed on teardown (:meth:`ServiceProcess.kill`), whatever the test did.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import orjson
import yaml

REPO_ROOT: Final = Path(__file__).resolve().parents[2]


def _plain(value: object) -> object:
    """A dataclass tree as YAML-safe builtins (tuples become lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def write_config(path: Path, config: object) -> Path:
    """Write a service config dataclass as the YAML file its ``--config`` flag reads."""
    assert dataclasses.is_dataclass(config)
    assert not isinstance(config, type)
    path.write_text(yaml.safe_dump(_plain(dataclasses.asdict(config)), sort_keys=False), encoding="utf-8")
    return path


def read_log(path: Path) -> list[dict[str, Any]]:
    """The JSON records of a log file; lines that are not JSON objects (tracebacks) are skipped."""
    if not path.exists():
        return []
    records: list[dict[str, Any]] = []
    for line in path.read_bytes().splitlines():
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


class ServiceProcess:
    """One ``python -m <module> --config FILE`` child process with its log file."""

    def __init__(
        self, name: str, module: str, config: object, workdir: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self.module = module
        self.config = config
        self.config_path = workdir / f"{name}.yaml"
        self.log_path = workdir / f"{name}.log"
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.returncode

    async def start(self) -> None:
        await asyncio.to_thread(write_config, self.config_path, self.config)
        log = await asyncio.to_thread(self.log_path.open, "ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.module,
                "--config",
                str(self.config_path),
                cwd=REPO_ROOT,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        finally:
            log.close()  # the child holds its own descriptor

    async def terminate(self, timeout: float = 20.0) -> int:  # noqa: ASYNC109
        """SIGTERM, as the kubelet stops a container, then wait for the exit code."""
        assert self.process is not None, f"{self.name} was never started"
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(timeout):
            return await self.process.wait()

    async def kill(self) -> None:
        """SIGKILL if still running and reap it; safe to call at any time."""
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await self.process.wait()

    async def records(self) -> list[dict[str, Any]]:
        """The JSON log records written so far."""
        return await asyncio.to_thread(read_log, self.log_path)

    async def tail(self, lines: int = 30) -> str:
        """The last lines of the log, for assertion messages."""
        if not self.log_path.exists():
            return ""
        text = await asyncio.to_thread(self.log_path.read_text, "utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])
