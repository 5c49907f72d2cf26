"""Bootstrap user data parsing: nodeadm MIME, AL2 bootstrap.sh, Bottlerocket TOML, bad input."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localcluster.userdata import (
    BootstrapFormat,
    NodeBootstrap,
    UserDataError,
    decode_user_data,
    parse_encoded_user_data,
    parse_user_data,
)
from shared.taints import Taint

NODEADM = """MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="//"

--//
Content-Type: application/node.eks.aws

---
apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  cluster:
    name: demo
    apiServerEndpoint: https://example.com
    certificateAuthority: Y2E=
    cidr: 10.100.0.0/16
  kubelet:
    config:
      maxPods: 42
    flags:
    - --node-labels=jitnode.io/nodepool=default,team=a
    - --register-with-taints=dedicated=gpu:NoSchedule,jitnode.io/unregistered=:NoExecute

--//
Content-Type: text/x-shellscript; charset="us-ascii"

#!/bin/bash
echo hello

--//--
"""

AL2 = """#!/bin/bash
set -ex
B64_CLUSTER_CA=Y2E=
/etc/eks/bootstrap.sh demo --b64-cluster-ca $B64_CLUSTER_CA \\
  --apiserver-endpoint https://example.com --use-max-pods false \\
  --kubelet-extra-args '--node-labels=jitnode.io/nodepool=batch,tier=2 \
     --register-with-taints=batch=true:NoSchedule --max-pods=17'
"""

BOTTLEROCKET = """
[settings.kubernetes]
cluster-name = "demo"
api-server = "https://example.com"
max-pods = 30

[settings.kubernetes.node-labels]
"jitnode.io/nodepool" = "br"

[settings.kubernetes.node-taints]
"dedicated" = ["gpu:NoSchedule", "gpu:NoExecute"]
"""


def _mime(content_type: str, body: str) -> str:
    head = 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="//"\n\n'
    return f"{head}--//\nContent-Type: {content_type}\n\n{body}\n--//--\n"


def test_nodeadm_mime() -> None:
    boot = parse_user_data(NODEADM)
    assert boot.format is BootstrapFormat.NODEADM
    assert boot.cluster == "demo"
    assert boot.labels == {"jitnode.io/nodepool": "default", "team": "a"}
    assert boot.taints == (
        Taint(key="dedicated", value="gpu", effect="NoSchedule"),
        Taint(key="jitnode.io/unregistered", value="", effect="NoExecute"),
    )
    assert boot.max_pods == 42
    assert boot.taints[1].to_api() == {"key": "jitnode.io/unregistered", "effect": "NoExecute"}


def test_nodeadm_base64_part_and_encoded_user_data() -> None:
    config = b"apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\n"
    config += b"spec:\n  kubelet:\n    flags: ['--max-pods 9']\n"
    mime = (
        'Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n--b\n'
        "Content-Type: application/node.eks.aws\nContent-Transfer-Encoding: base64\n\n"
        f"{base64.b64encode(config).decode()}\n--b--\n"
    )
    boot = parse_encoded_user_data(base64.b64encode(mime.encode()).decode())
    assert boot.format is BootstrapFormat.NODEADM
    assert boot.max_pods == 9
    assert boot.labels == {}


def test_bare_nodeconfig_with_register_with_taints() -> None:
    text = """apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  kubelet:
    config:
      registerWithTaints:
      - {key: a, value: b, effect: PreferNoSchedule}
"""
    assert parse_user_data(text).taints == (Taint(key="a", value="b", effect="PreferNoSchedule"),)


def test_al2_bootstrap() -> None:
    boot = parse_user_data(AL2)
    assert boot.format is BootstrapFormat.AL2
    assert boot.cluster == "demo"
    assert boot.labels == {"jitnode.io/nodepool": "batch", "tier": "2"}
    assert boot.taints == (Taint(key="batch", value="true", effect="NoSchedule"),)
    assert boot.max_pods == 17


def test_al2_inside_mime_shell_part() -> None:
    mime = _mime("text/x-shellscript", AL2)
    assert parse_user_data(mime).labels["jitnode.io/nodepool"] == "batch"


def test_bottlerocket() -> None:
    boot = parse_user_data(BOTTLEROCKET)
    assert boot.format is BootstrapFormat.BOTTLEROCKET
    assert boot.cluster == "demo"
    assert boot.labels == {"jitnode.io/nodepool": "br"}
    assert boot.taints == (
        Taint(key="dedicated", value="gpu", effect="NoSchedule"),
        Taint(key="dedicated", value="gpu", effect="NoExecute"),
    )
    assert boot.max_pods == 30


@pytest.mark.parametrize("text", ["", "   \n", "#!/bin/bash\necho not a node\n", "hello user data"])
def test_unrecognised_user_data_means_defaults(text: str) -> None:
    assert parse_user_data(text) == NodeBootstrap()


@pytest.mark.parametrize(
    ("text", "path_part"),
    [
        (NODEADM.replace("dedicated=gpu:NoSchedule", "dedicated=gpu:Sometimes"), "--register-with-taints"),
        (NODEADM.replace("team=a", "team"), "--node-labels"),
        (NODEADM.replace("team=a", "bad key!=a"), "--node-labels"),
        (NODEADM.replace("maxPods: 42", "maxPods: many"), "maxPods"),
        (NODEADM.replace("kind: NodeConfig", "kind: Other"), "userData.nodeConfig"),
        (NODEADM.replace("    flags:\n", "    flags: [\n"), "userData.nodeConfig"),
        (AL2.replace("tier=2", "tier=-x-"), "--kubelet-extra-args"),
        (BOTTLEROCKET.replace("gpu:NoExecute", "gpu"), "node-taints"),
        ("[settings.kubernetes\n", "userData"),
    ],
)
def test_bad_input_names_the_field(text: str, path_part: str) -> None:
    with pytest.raises(UserDataError) as info:
        parse_user_data(text)
    assert path_part in info.value.path


def test_decode_rejects_bad_base64() -> None:
    with pytest.raises(UserDataError, match="base64"):
        decode_user_data("not base64!")
    with pytest.raises(UserDataError, match="UTF-8"):
        decode_user_data(base64.b64encode(b"\x1f\x8b\xff\xfe").decode())


_label = st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,10}[a-z0-9])?", fullmatch=True)


@given(
    labels=st.dictionaries(_label, _label, max_size=5),
    taints=st.lists(st.tuples(_label, _label, st.sampled_from(["NoSchedule", "NoExecute"])), max_size=4),
)
def test_nodeadm_round_trip(labels: dict[str, str], taints: list[tuple[str, str, str]]) -> None:
    flags = []
    if labels:
        flags.append("--node-labels=" + ",".join(f"{k}={v}" for k, v in labels.items()))
    if taints:
        flags.append("--register-with-taints=" + ",".join(f"{k}={v}:{e}" for k, v, e in taints))
    doc = "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    flags:"
    doc += "".join(f"\n    - '{flag}'" for flag in flags) or " []"
    mime = _mime("application/node.eks.aws", doc)
    boot = parse_user_data(mime)
    assert boot.labels == labels
    assert boot.taints == tuple(Taint(key=k, value=v, effect=e) for k, v, e in taints)


@pytest.mark.parametrize("family", ["AL2023", "AL2", "Bottlerocket"])
@pytest.mark.parametrize("with_custom", [False, True])
def test_reads_what_the_launcher_writes(family: str, with_custom: bool) -> None:
    """Contract with ``launcher.aws.userdata``: every AMI family's user data round-trips."""
    from launcher.aws.userdata import ClusterInfo, NodeSettings, render_user_data

    taints = (Taint(key="dedicated", value="gpu", effect="NoSchedule"), Taint(key="x", effect="NoExecute"))
    node = NodeSettings(labels={"jitnode.io/nodepool": "default", "team": "a"}, taints=taints, max_pods=33)
    custom = None
    if with_custom:
        custom = "[settings.motd]\n" if family == "Bottlerocket" else "#!/bin/bash\necho custom\n"
    cluster = ClusterInfo(name="demo", endpoint="https://example.com", certificate_authority="Y2E=")
    boot = parse_user_data(render_user_data(family, cluster, node, custom))
    assert boot.cluster == "demo"
    assert boot.labels == {"jitnode.io/nodepool": "default", "team": "a"}
    assert boot.taints == taints
    assert boot.max_pods == 33
