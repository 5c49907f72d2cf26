"""``jitnode convert`` in-process: streams, files, exit codes 0 / 2 / 3 and what goes to stderr."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from cli.main import main

PROVISIONER = """
apiVersion: karpenter.sh/v1alpha5
kind: Provisioner
metadata: {name: default}
spec:
  requirements:
    - {key: karpenter.sh/capacity-type, operator: In, values: [spot]}
    - {key: kubernetes.io/arch, operator: In, values: [arm64]}
    - {key: karpenter.k8s.aws/instance-family, operator: In, values: [m7g]}
  ttlSecondsAfterEmpty: 60
  providerRef: {name: default}
"""
TEMPLATE = """
apiVersion: karpenter.k8s.aws/v1alpha1
kind: AWSNodeTemplate
metadata: {name: default}
spec:
  amiFamily: AL2023
  instanceProfile: NodeProfile
  subnetSelector: {karpenter.sh/discovery: prod}
  securityGroupSelector: {karpenter.sh/discovery: prod}
  metadataOptions: {httpTokens: required}
"""
CLEAN = f"{PROVISIONER}---{TEMPLATE}"


def run(monkeypatch: pytest.MonkeyPatch, stdin: str, *argv: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["convert", *argv])


def test_clean_input_exits_0_and_writes_yaml(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, CLEAN) == 0
    out, err = capsys.readouterr()
    kinds = [d["kind"] for d in yaml.safe_load_all(out)]
    assert kinds == ["NodePool", "EC2NodeClass"]
    assert err == ""


def test_dropped_fields_exit_3_and_are_listed_by_path(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = CLEAN.replace(
        "ttlSecondsAfterEmpty: 60", "ttlSecondsAfterEmpty: 60\n  kubeletConfiguration: {maxPods: 8}"
    )
    text = text.replace("amiFamily: AL2023", "amiFamily: AL2023\n  launchTemplate: custom")
    assert run(monkeypatch, text, "-f", "-") == 3
    out, err = capsys.readouterr()
    assert next(d for d in yaml.safe_load_all(out) if d["kind"] == "EC2NodeClass")["spec"]["kubelet"] == {
        "maxPods": 8
    }
    lines = err.splitlines()
    assert "jitnode convert: dropped: AWSNodeTemplate/default: spec.launchTemplate: " in lines[-2]
    assert lines[-1].startswith("jitnode convert: 1 field(s) could not be mapped")


def test_notes_go_to_stderr_unless_quiet(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = CLEAN.replace("  amiFamily: AL2023\n", "")
    assert run(monkeypatch, text) == 0
    assert "note: AWSNodeTemplate/default: spec.amiFamily: " in capsys.readouterr().err
    assert run(monkeypatch, text, "--quiet") == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "stdin, document 1"),
        ("kind: [unclosed\n", "not valid YAML"),
        ("---\n", "no Karpenter objects"),
        (
            PROVISIONER.replace("ttlSecondsAfterEmpty: 60", "ttlSecondsAfterEmpty: soon"),
            "spec.ttlSecondsAfterEmpty",
        ),
    ],
)
def test_invalid_input_exits_2_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    assert run(monkeypatch, text) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert message in err


def test_files_and_output_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "p.yaml").write_text(PROVISIONER)
    (tmp_path / "t.yaml").write_text(TEMPLATE)
    target = tmp_path / "out.yaml"
    code = run(
        monkeypatch, "", "-f", str(tmp_path / "p.yaml"), "-f", str(tmp_path / "t.yaml"), "-o", str(target)
    )
    assert code == 0
    assert capsys.readouterr().out == ""
    pool, node_class = yaml.safe_load_all(target.read_text())
    assert pool["spec"]["disruption"] == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "1m"}
    assert node_class["spec"]["instanceProfile"] == "NodeProfile"


def test_missing_file_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, "", "-f", str(tmp_path / "absent.yaml")) == 2
    assert "cannot read" in capsys.readouterr().err


def test_errors_name_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.yaml").write_text(TEMPLATE + "---\nkind: Nope\napiVersion: x/v1\n")
    assert run(monkeypatch, "", "-f", str(tmp_path / "bad.yaml")) == 2
    assert "bad.yaml, document 2" in capsys.readouterr().err


def test_role_and_instance_profile_are_exclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as caught:
        run(monkeypatch, CLEAN, "--role", "a", "--instance-profile", "b")
    assert caught.value.code == 2
