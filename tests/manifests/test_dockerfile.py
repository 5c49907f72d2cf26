"""The Dockerfile, checked structurally (no container engine on this machine)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import orjson
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            out.append([])
        if out:
            out[-1].append((keyword, rest))
    return out


def test_multi_stage_build_with_wheels() -> None:
    built = stages()
    assert len(built) >= 2
    build, runtime = built[0], built[-1]
    assert any(k == "RUN" and "pip wheel" in r for k, r in build)
    install = [r for k, r in runtime if k == "RUN" and "pip install" in r]
    assert install
    assert "--no-index" in install[0]
    assert "from=build" in install[0]
    assert not any(k == "RUN" and ("gcc" in r or "build-essential" in r) for k, r in runtime)


def test_runs_as_non_root_matching_the_manifests() -> None:
    runtime = stages()[-1]
    users = [r for k, r in runtime if k == "USER"]
    assert users, "no USER in the final stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "USER must be numeric (runAsNonRoot can only check a numeric id)"
    assert int(uid) != 0
    for path in ("extender", "launcher", "scheduler"):
        deployment = yaml.safe_load((REPO / "manifests" / path / "deployment.yaml").read_text())
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid)


def test_read_only_root_friendly() -> None:
    runtime = dict(stages()[-1])
    env = " ".join(r for k, r in stages()[-1] if k == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert any(k == "RUN" and "compileall" in r for k, r in stages()[-1])
    assert "VOLUME" not in runtime  # writable paths are the manifests' emptyDirs, not image volumes


def test_two_entry_points_documented_and_used() -> None:
    text = DOCKERFILE.read_text()
    assert "python -m extender" in text
    assert "python -m launcher" in text
    runtime = stages()[-1]
    (entrypoint,) = [r for k, r in runtime if k == "ENTRYPOINT"]
    assert orjson.loads(entrypoint) == ["python", "-m"]  # exec form: python is PID 1, gets SIGTERM
    for component in ("extender", "launcher"):
        deployment = yaml.safe_load((REPO / "manifests" / component / "deployment.yaml").read_text())
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["python", "-m", component]
        assert (REPO / component / "__main__.py").is_file()


def test_copies_only_what_the_wheel_needs() -> None:
    copied = [shlex.split(r)[0] for k, r in stages()[0] if k == "COPY"]
    assert "pyproject.toml" in copied
    for package in ("shared", "extender", "launcher"):
        assert package in copied
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored
    assert ".git" in ignored
