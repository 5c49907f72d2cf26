"""``python -m localcluster up`` as a user runs it: prints how to connect, stops on SIGINT."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO


@pytest.mark.slow
async def test_up_prints_kubeconfig_and_stops_on_sigint(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc" / "config"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "localcluster",
        "up",
        "--kubeconfig",
        str(kubeconfig),
        "--boot-delay",
        "0",
        cwd=REPO,
        env={**os.environ, "LOG_LEVEL": "warning"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not any(line.startswith("Press Ctrl-C") for line in output):
                line = await process.stdout.readline()
                assert line, f"exited early: {''.join(output)}"
                output.append(line.decode())
        text = "".join(output)
        assert f"kubeconfig:   {kubeconfig}" in text
        assert f"kubectl --kubeconfig {kubeconfig} get nodes" in text
        assert "export AWS_ENDPOINT_URL=http://127.0.0.1:" in text
        server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        assert f"API server:   {server}" in text

        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            rest = await process.stdout.read()
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0, rest.decode()
    assert "stopping localcluster" in rest.decode()
    assert "Traceback" not in rest.decode()
