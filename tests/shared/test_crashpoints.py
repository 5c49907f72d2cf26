"""Crash points: the ``JITNODE_CRASH_AT`` syntax, refusal of unknown names, and a real SIGKILL."""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.crashpoints import (
    CLAIM_CREATED,
    DRAIN_EVICTED,
    ENV_VAR,
    FLEET_RETURNED,
    KNOWN,
    CrashPointError,
    configure,
    crash_point,
    parse,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _disarmed() -> Iterator[None]:
    """This process must never be left armed: a hit would kill pytest itself."""
    configure({})
    yield
    configure({})


def test_an_unset_or_empty_variable_arms_nothing() -> None:
    assert configure({}) == {}
    assert parse("") == {}
    assert parse(" , ") == {}


def test_names_and_hit_counts_parse() -> None:
    assert parse(f"{CLAIM_CREATED}") == {CLAIM_CREATED: 1}
    assert parse(f" {CLAIM_CREATED}@3 , {DRAIN_EVICTED}") == {CLAIM_CREATED: 3, DRAIN_EVICTED: 1}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("claim-created-typo", "unknown crash point 'claim-created-typo'"),
        (f"{CLAIM_CREATED}@0", "positive integer"),
        (f"{CLAIM_CREATED}@x", "positive integer"),
        (f"{CLAIM_CREATED}@", "positive integer"),
        (f"{CLAIM_CREATED},{CLAIM_CREATED}@2", "named twice"),
    ],
)
def test_bad_specs_are_refused_naming_the_problem(spec: str, message: str) -> None:
    with pytest.raises(CrashPointError, match=message) as caught:
        configure({ENV_VAR: spec})
    assert ENV_VAR in str(caught.value)


def test_the_error_lists_the_known_points() -> None:
    with pytest.raises(CrashPointError) as caught:
        parse("nope")
    assert all(name in str(caught.value) for name in KNOWN)


def test_an_unarmed_point_does_nothing() -> None:
    configure({ENV_VAR: CLAIM_CREATED})
    died: list[str] = []
    crash_point(FLEET_RETURNED, lambda: died.append("fleet"))
    assert died == []


def test_hits_before_the_chosen_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    kills: list[int] = []
    monkeypatch.setattr("shared.crashpoints.os.kill", lambda pid, sig: kills.append(sig))
    configure({ENV_VAR: f"{CLAIM_CREATED}@3"})
    before: list[int] = []
    for hit in range(1, 5):
        crash_point(CLAIM_CREATED, functools.partial(before.append, hit))
    assert before == [3]  # the callback runs only on the killing hit, and only once
    assert kills == [signal.SIGKILL]


@pytest.mark.parametrize("service", ["launcher", "extender"])
def test_a_service_refuses_an_unknown_crash_point_at_startup(service: str, tmp_path: Path) -> None:
    config = tmp_path / "empty.yaml"
    config.write_text("{}\n")
    result = subprocess.run(
        [sys.executable, "-m", service, "--config", str(config)],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", ENV_VAR: "no-such-point"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "unknown crash point 'no-such-point'" in result.stderr


def test_an_armed_point_kills_the_process_with_sigkill() -> None:
    """A child python process dies by signal 9 at its second hit: no finally, no atexit."""
    script = textwrap.dedent(
        f"""
        import atexit, os, sys
        from shared import crashpoints
        from shared.logs import configure_logging
        configure_logging("test")
        atexit.register(lambda: print("atexit ran", flush=True))
        crashpoints.configure(os.environ)
        try:
            crashpoints.crash_point({CLAIM_CREATED!r})
            print("first hit passed", flush=True)
            crashpoints.crash_point({CLAIM_CREATED!r}, lambda: print("before death", flush=True))
            print("survived", flush=True)
        finally:
            print("finally ran", flush=True)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", ENV_VAR: f"{CLAIM_CREATED}@2"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == -signal.SIGKILL, (result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    assert "first hit passed" in lines
    assert "before death" in lines
    assert not {"survived", "finally ran", "atexit ran"} & set(lines)
    assert any('"crash point reached"' in line and CLAIM_CREATED in line for line in lines)
