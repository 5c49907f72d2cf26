"""User data the launcher renders is read back by the local kubelets' parser of the real formats."""

from __future__ import annotations

import email
import email.policy
import tomllib

import yaml
from hypothesis import given
from hypothesis import strategies as st

from launcher.aws.userdata import (
    NODEADM_API_VERSION,
    NODEADM_CONTENT_TYPE,
    ClusterInfo,
    NodeSettings,
    render_user_data,
)
from localcluster.userdata import BootstrapFormat, parse_user_data
from shared.resources import Resources
from shared.taints import Taint

CLUSTER = ClusterInfo(
    name="demo", endpoint="https://api.example.com", certificate_authority="Y2E=", cidr="10.100.0.0/16"
)
NODE = NodeSettings(
    labels={"jitnode.io/nodepool": "default", "intent": "apps"},
    taints=(
        Taint(key="dedicated", value="gpu", effect="NoSchedule"),
        Taint(key="startup", effect="NoExecute"),
    ),
    max_pods=42,
)


def _parts(text: str) -> list[tuple[str, str]]:
    message = email.message_from_string(text, policy=email.policy.compat32)
    out = []
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        out.append((part.get_content_type(), payload.decode()))
    return out


def test_al2023_nodeconfig_follows_the_nodeadm_spec() -> None:
    text = render_user_data("AL2023", CLUSTER, NODE)
    parts = _parts(text)
    assert [ct for ct, _ in parts] == [NODEADM_CONTENT_TYPE]
    config = yaml.safe_load(parts[0][1])
    assert config["apiVersion"] == NODEADM_API_VERSION
    assert config["kind"] == "NodeConfig"
    assert config["spec"]["cluster"] == {
        "name": "demo",
        "apiServerEndpoint": "https://api.example.com",
        "certificateAuthority": "Y2E=",
        "cidr": "10.100.0.0/16",
    }
    assert config["spec"]["kubelet"]["config"] == {"maxPods": 42}
    assert config["spec"]["kubelet"]["flags"] == [
        "--node-labels=intent=apps,jitnode.io/nodepool=default",
        "--register-with-taints=dedicated=gpu:NoSchedule,startup:NoExecute",
    ]


def test_al2023_round_trips_through_the_kubelet_parser_with_custom_parts_first() -> None:
    custom = "#!/bin/bash\necho custom\n"
    text = render_user_data("AL2023", CLUSTER, NODE, custom)
    assert [ct for ct, _ in _parts(text)] == ["text/x-shellscript", NODEADM_CONTENT_TYPE]
    boot = parse_user_data(text)
    assert boot.format is BootstrapFormat.NODEADM
    assert boot.cluster == "demo"
    assert dict(boot.labels) == dict(NODE.labels)
    assert [(t.key, t.value, t.effect) for t in boot.taints] == [
        ("dedicated", "gpu", "NoSchedule"),
        ("startup", "", "NoExecute"),
    ]
    assert boot.max_pods == 42


def test_custom_multipart_user_data_is_merged_part_by_part() -> None:
    inner = render_user_data("AL2023", CLUSTER, NodeSettings(labels={"from": "custom"}))
    text = render_user_data("AL2023", CLUSTER, NodeSettings(labels={"team": "a"}), inner)
    parts = _parts(text)
    assert [ct for ct, _ in parts] == [NODEADM_CONTENT_TYPE, NODEADM_CONTENT_TYPE]
    # nodeadm merges flags of every NodeConfig, ours last.
    assert dict(parse_user_data(text).labels) == {"from": "custom", "team": "a"}


def test_kubelet_reservations_go_into_the_kubelet_config() -> None:
    node = NodeSettings(
        kube_reserved=Resources({"cpu": 100}), eviction_hard={"memory.available": "5%"}, max_pods=None
    )
    config = yaml.safe_load(_parts(render_user_data("AL2023", CLUSTER, node))[0][1])
    assert config["spec"]["kubelet"]["config"] == {
        "kubeReserved": {"cpu": "100m"},
        "evictionHard": {"memory.available": "5%"},
    }
    assert "flags" not in config["spec"]["kubelet"]


def test_al2_bootstrap_script_round_trips() -> None:
    boot = parse_user_data(render_user_data("AL2", CLUSTER, NODE, "#!/bin/bash\necho first\n"))
    assert boot.format is BootstrapFormat.AL2
    assert boot.cluster == "demo"
    assert dict(boot.labels) == dict(NODE.labels)
    assert [str(t.key) for t in boot.taints] == ["dedicated", "startup"]
    assert boot.max_pods == 42


def test_bottlerocket_settings_merge_over_custom_toml() -> None:
    custom = (
        '[settings.kubernetes.node-labels]\nown = "yes"\n[settings.host-containers.admin]\nenabled = true\n'
    )
    text = render_user_data("Bottlerocket", CLUSTER, NODE, custom)
    document = tomllib.loads(text)
    kubernetes = document["settings"]["kubernetes"]
    assert kubernetes["cluster-name"] == "demo"
    assert kubernetes["node-labels"] == {"own": "yes", **NODE.labels}
    assert kubernetes["node-taints"] == {"dedicated": ["gpu:NoSchedule"], "startup": [":NoExecute"]}
    assert document["settings"]["host-containers"]["admin"]["enabled"] is True
    boot = parse_user_data(text)
    assert boot.max_pods == 42
    assert boot.labels["own"] == "yes"


def test_custom_family_passes_user_data_through() -> None:
    assert render_user_data("Custom", CLUSTER, NODE, "#!/bin/sh\necho mine\n") == "#!/bin/sh\necho mine\n"


_label_keys = st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z]{1,5}/[a-z][a-z0-9]{0,6})?", fullmatch=True)
_label_values = st.from_regex(r"([a-z0-9]([a-z0-9.-]{0,8}[a-z0-9])?)?", fullmatch=True)


@given(
    labels=st.dictionaries(_label_keys, _label_values, max_size=6), family=st.sampled_from(["AL2023", "AL2"])
)
def test_any_labels_round_trip(labels: dict[str, str], family: str) -> None:
    text = render_user_data(family, CLUSTER, NodeSettings(labels=labels))
    assert dict(parse_user_data(text).labels) == labels
    # Deterministic: the launch template's content hash depends on it.
    assert render_user_data(family, CLUSTER, NodeSettings(labels=labels)) == text
