"""Each conversion rule from Karpenter v1alpha5 (Provisioner, AWSNodeTemplate) to jitnode.io/v1."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shared.api.nodeclass import EC2NodeClass
from shared.api.nodepool import NodePool
from shared.convert import Conversion, ConvertOptions, Severity, convert
from shared.errors import ValidationError


def provisioner(name: str = "default", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"providerRef": {"name": "default"}}
    body.update(spec)
    return {
        "apiVersion": "karpenter.sh/v1alpha5",
        "kind": "Provisioner",
        "metadata": {"name": name},
        "spec": body,
    }


def template(name: str = "default", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subnetSelector": {"karpenter.sh/discovery": "prod"},
        "securityGroupSelector": {"karpenter.sh/discovery": "prod"},
    }
    body.update(spec)
    return {
        "apiVersion": "karpenter.k8s.aws/v1alpha1",
        "kind": "AWSNodeTemplate",
        "metadata": {"name": name},
        "spec": body,
    }


def one(conversion: Conversion, kind: str) -> dict[str, Any]:
    (found,) = [o for o in conversion.objects if o["kind"] == kind]
    return found


def paths(conversion: Conversion, severity: Severity = Severity.DROPPED) -> list[str]:
    return [f.path for f in conversion.findings if f.severity is severity]


def pool_of(*docs: dict[str, Any]) -> tuple[dict[str, Any], Conversion]:
    conversion = convert(list(docs))
    return one(conversion, "NodePool"), conversion


def requirement(pool: dict[str, Any], key: str) -> dict[str, Any] | None:
    reqs = pool["spec"]["template"]["spec"]["requirements"]
    return next((r for r in reqs if r["key"] == key), None)


# --- labels and requirements ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("karpenter", "jitnode"),
    [
        ("karpenter.sh/capacity-type", "jitnode.io/capacity-type"),
        ("karpenter.k8s.aws/instance-size", "jitnode.io/instance-size"),
        ("karpenter.k8s.aws/instance-family", "jitnode.io/instance-family"),
        ("karpenter.k8s.aws/instance-category", "jitnode.io/instance-category"),
        ("karpenter.k8s.aws/instance-generation", "jitnode.io/instance-generation"),
        ("karpenter.k8s.aws/instance-cpu", "jitnode.io/instance-cpu"),
        ("karpenter.k8s.aws/instance-memory", "jitnode.io/instance-memory"),
        ("node.kubernetes.io/instance-type", "node.kubernetes.io/instance-type"),
        ("topology.kubernetes.io/zone", "topology.kubernetes.io/zone"),
        ("kubernetes.io/arch", "kubernetes.io/arch"),
        ("kubernetes.io/os", "kubernetes.io/os"),
        ("beta.kubernetes.io/arch", "kubernetes.io/arch"),
        ("example.com/team", "example.com/team"),
    ],
)
def test_requirement_keys_map_to_jitnode_keys(karpenter: str, jitnode: str) -> None:
    value = {"karpenter.sh/capacity-type": "spot"}.get(karpenter, "2")
    pool, conversion = pool_of(
        provisioner(requirements=[{"key": karpenter, "operator": "In", "values": [value]}]), template()
    )
    assert requirement(pool, jitnode) == {"key": jitnode, "operator": "In", "values": [value]}
    assert requirement(pool, karpenter) is None or karpenter == jitnode
    assert conversion.complete


@pytest.mark.parametrize(
    "key",
    [
        "karpenter.k8s.aws/instance-hypervisor",
        "karpenter.k8s.aws/instance-encryption-in-transit-supported",
        "karpenter.k8s.aws/instance-local-nvme",
        "karpenter.k8s.aws/instance-network-bandwidth",
        "karpenter.k8s.aws/instance-gpu-count",
        "karpenter.k8s.aws/instance-gpu-name",
    ],
)
def test_requirements_without_equivalent_are_dropped_and_reported(key: str) -> None:
    pool, conversion = pool_of(
        provisioner(
            requirements=[
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]},
                {"key": key, "operator": "In", "values": ["nitro"]},
            ]
        ),
        template(),
    )
    assert all(r["key"] != key for r in pool["spec"]["template"]["spec"]["requirements"])
    assert paths(conversion) == ["spec.requirements[1]"]
    assert key in conversion.dropped[0].message
    assert str(conversion.dropped[0]).startswith("dropped: Provisioner/default: spec.requirements[1]: ")


def test_pool_name_requirement_and_label_are_dropped_as_jitnode_sets_them() -> None:
    _, conversion = pool_of(
        provisioner(
            labels={"karpenter.sh/provisioner-name": "x", "team": "a"},
            requirements=[{"key": "karpenter.sh/nodepool", "operator": "In", "values": ["x"]}],
        ),
        template(),
    )
    assert sorted(paths(conversion)) == ["spec.labels.karpenter.sh/provisioner-name", "spec.requirements[0]"]


def test_labels_are_renamed_and_unknown_karpenter_labels_dropped() -> None:
    pool, conversion = pool_of(
        provisioner(labels={"intent": "apps", "karpenter.k8s.aws/instance-hypervisor": "nitro"}), template()
    )
    assert pool["spec"]["template"]["metadata"]["labels"] == {"intent": "apps"}
    assert paths(conversion) == ["spec.labels.karpenter.k8s.aws/instance-hypervisor"]


def test_reserved_capacity_is_dropped_from_capacity_type_values() -> None:
    reqs = [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["reserved", "spot"]}]
    pool, conversion = pool_of(provisioner(requirements=reqs), template())
    assert requirement(pool, "jitnode.io/capacity-type") == {
        "key": "jitnode.io/capacity-type",
        "operator": "In",
        "values": ["spot"],
    }
    assert paths(conversion) == ["spec.requirements[0].values"]


def test_webhook_defaults_become_explicit_requirements_with_notes() -> None:
    pool, conversion = pool_of(provisioner(), template())
    reqs = pool["spec"]["template"]["spec"]["requirements"]
    assert reqs == [
        {"key": "jitnode.io/capacity-type", "operator": "In", "values": ["on-demand"]},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        {"key": "jitnode.io/instance-category", "operator": "In", "values": ["c", "m", "r"]},
        {"key": "jitnode.io/instance-generation", "operator": "Gt", "values": ["2"]},
    ]
    assert paths(conversion, Severity.NOTE).count("spec.requirements") == 4
    assert conversion.complete


def test_webhook_defaults_yield_to_explicit_choices() -> None:
    pool, _ = pool_of(
        provisioner(
            labels={"kubernetes.io/arch": "arm64"},
            requirements=[
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]},
                {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["t3.large"]},
            ],
        ),
        template(),
    )
    keys = [r["key"] for r in pool["spec"]["template"]["spec"]["requirements"]]
    assert keys == ["jitnode.io/capacity-type", "node.kubernetes.io/instance-type"]


def test_taints_and_startup_taints_carry_over() -> None:
    taints = [{"key": "example.com/special", "value": "yes", "effect": "NoSchedule"}]
    startup = [{"key": "example.com/init", "effect": "NoExecute", "timeAdded": "2024-01-01T00:00:00Z"}]
    pool, conversion = pool_of(provisioner(taints=taints, startupTaints=startup), template())
    spec = pool["spec"]["template"]["spec"]
    assert spec["taints"] == taints
    assert spec["startupTaints"] == [{"key": "example.com/init", "effect": "NoExecute"}]
    assert conversion.complete


def test_annotations_and_weight_carry_over() -> None:
    pool, _ = pool_of(provisioner(annotations={"example.com/owner": "me"}, weight=50), template())
    assert pool["spec"]["template"]["metadata"]["annotations"] == {"example.com/owner": "me"}
    assert pool["spec"]["weight"] == 50


# --- disruption and expiry --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "disruption", "expire"),
    [
        (
            {"ttlSecondsAfterEmpty": 30},
            {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30s"},
            "Never",
        ),
        (
            {"ttlSecondsAfterEmpty": 90},
            {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "1m30s"},
            "Never",
        ),
        (
            {"consolidation": {"enabled": True}, "ttlSecondsUntilExpired": 2592000},
            {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "0s"},
            "720h",
        ),
        (
            {"consolidation": {"enabled": False}, "ttlSecondsUntilExpired": 3601},
            {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "Never"},
            "1h1s",
        ),
        ({}, {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "Never"}, "Never"),
    ],
)
def test_ttls_become_disruption_and_expiry(
    spec: dict[str, Any], disruption: dict[str, str], expire: str
) -> None:
    pool, conversion = pool_of(provisioner(**spec), template())
    assert pool["spec"]["disruption"] == disruption
    assert pool["spec"]["template"]["spec"]["expireAfter"] == expire
    parsed = NodePool.from_api(pool)
    assert parsed.disruption.consolidation_policy == disruption["consolidationPolicy"]
    assert conversion.complete


def test_consolidation_with_empty_ttl_is_invalid() -> None:
    with pytest.raises(ValidationError, match=r"spec\.consolidation\.enabled"):
        convert([provisioner(consolidation={"enabled": True}, ttlSecondsAfterEmpty=30), template()])


def test_negative_ttl_is_invalid() -> None:
    with pytest.raises(ValidationError, match=r"spec\.ttlSecondsAfterEmpty"):
        convert([provisioner(ttlSecondsAfterEmpty=-1), template()])


def test_limits_become_quantity_strings() -> None:
    pool, _ = pool_of(
        provisioner(limits={"resources": {"cpu": 1000, "memory": "1000Gi", "nvidia.com/gpu": 4}})
    )
    assert pool["spec"]["limits"] == {"cpu": "1000", "memory": "1000Gi", "nvidia.com/gpu": "4"}


# --- provider references and kubelet settings --------------------------------------------------


def test_provider_ref_becomes_node_class_ref() -> None:
    pool, _ = pool_of(provisioner(providerRef={"name": "gpu"}), template("gpu"))
    assert pool["spec"]["template"]["spec"]["nodeClassRef"] == {
        "group": "jitnode.io",
        "kind": "EC2NodeClass",
        "name": "gpu",
    }


def test_inline_provider_becomes_a_node_class_named_after_the_pool() -> None:
    doc = provisioner("web", provider={**template()["spec"], "instanceProfile": "NodeProfile"})
    del doc["spec"]["providerRef"]
    conversion = convert([doc])
    assert [o["kind"] for o in conversion.objects] == ["NodePool", "EC2NodeClass"]
    node_class = one(conversion, "EC2NodeClass")
    assert node_class["metadata"]["name"] == "web"
    assert node_class["spec"]["instanceProfile"] == "NodeProfile"
    assert one(conversion, "NodePool")["spec"]["template"]["spec"]["nodeClassRef"]["name"] == "web"


def test_provisioner_without_provider_is_invalid() -> None:
    doc = provisioner()
    del doc["spec"]["providerRef"]
    with pytest.raises(ValidationError, match=r"spec\.providerRef"):
        convert([doc])


KUBELET = {
    "maxPods": 58,
    "systemReserved": {"cpu": "100m", "memory": "100Mi", "hugepages-2Mi": "1Gi"},
    "evictionHard": {"memory.available": "5%"},
    "clusterDNS": ["10.0.0.10"],
    "podsPerCore": 2,
}


def test_kubelet_settings_move_to_the_node_class_and_the_rest_is_reported() -> None:
    conversion = convert([provisioner(kubeletConfiguration=KUBELET), template()])
    kubelet = one(conversion, "EC2NodeClass")["spec"]["kubelet"]
    assert kubelet == {
        "maxPods": 58,
        "systemReserved": {"cpu": "100m", "memory": "100Mi"},
        "evictionHard": {"memory.available": "5%"},
    }
    assert sorted(paths(conversion)) == [
        "spec.kubeletConfiguration.clusterDNS",
        "spec.kubeletConfiguration.podsPerCore",
        "spec.kubeletConfiguration.systemReserved.hugepages-2Mi",
    ]
    assert EC2NodeClass.from_api(one(conversion, "EC2NodeClass")).kubelet is not None


def test_kubelet_settings_without_their_node_class_are_reported() -> None:
    conversion = convert([provisioner(kubeletConfiguration={"maxPods": 10})])
    (finding,) = conversion.dropped
    assert str(finding) == (
        "dropped: Provisioner/default: spec.kubeletConfiguration.maxPods: no jitnode equivalent on a "
        "NodePool (set it on the EC2NodeClass kubelet block)"
    )


def test_pools_sharing_a_node_class_must_agree_on_kubelet_settings() -> None:
    conversion = convert(
        [
            provisioner("a", kubeletConfiguration={"maxPods": 10}),
            provisioner("b", kubeletConfiguration={"maxPods": 20}),
            template(),
        ]
    )
    assert "kubelet" not in one(conversion, "EC2NodeClass")["spec"]
    assert [(f.subject, f.path) for f in conversion.dropped] == [
        ("Provisioner/a", "spec.kubeletConfiguration.maxPods"),
        ("Provisioner/b", "spec.kubeletConfiguration.maxPods"),
    ]
    # A pool without settings shares the class too: moving a's settings would change b's nodes.
    one_sided = convert(
        [provisioner("a", kubeletConfiguration={"maxPods": 10}), provisioner("b"), template()]
    )
    assert "kubelet" not in one(one_sided, "EC2NodeClass")["spec"]
    assert [(f.subject, f.path) for f in one_sided.dropped] == [
        ("Provisioner/a", "spec.kubeletConfiguration.maxPods")
    ]
    same = convert(
        [
            provisioner("a", kubeletConfiguration={"maxPods": 10}),
            provisioner("b", kubeletConfiguration={"maxPods": 10}),
            template(),
        ]
    )
    assert same.complete
    assert one(same, "EC2NodeClass")["spec"]["kubelet"] == {"maxPods": 10}


def test_unknown_provisioner_fields_are_reported() -> None:
    _, conversion = pool_of(provisioner(surprise=1), template())
    assert paths(conversion) == ["spec.surprise"]


# --- AWSNodeTemplate ------------------------------------------------------------------------------


def node_class_of(doc: dict[str, Any], **options: str) -> tuple[dict[str, Any], Conversion]:
    conversion = convert([doc], ConvertOptions(**options))
    return one(conversion, "EC2NodeClass"), conversion


def test_selectors_become_tag_terms_and_id_lists_become_id_terms() -> None:
    spec, conversion = node_class_of(
        template(
            subnetSelector={"aws-ids": "subnet-0a, subnet-0b"},
            securityGroupSelector={"aws::ids": "sg-01", "Name": "nodes"},
            instanceProfile="P",
        )
    )
    assert spec["spec"]["subnetSelectorTerms"] == [{"id": "subnet-0a"}, {"id": "subnet-0b"}]
    assert spec["spec"]["securityGroupSelectorTerms"] == [{"id": "sg-01"}]
    assert paths(conversion) == ["spec.securityGroupSelector.Name"]


def test_missing_subnet_selector_is_invalid() -> None:
    doc = template()
    del doc["spec"]["subnetSelector"]
    with pytest.raises(ValidationError, match=r"spec\.subnetSelector: is required"):
        convert([doc])


@pytest.mark.parametrize(
    ("family", "alias"),
    [("AL2", "al2@latest"), ("AL2023", "al2023@latest"), ("Bottlerocket", "bottlerocket@latest")],
)
def test_ami_family_becomes_an_alias(family: str, alias: str) -> None:
    node_class, conversion = node_class_of(template(amiFamily=family))
    assert node_class["spec"]["amiSelectorTerms"] == [{"alias": alias}]
    assert "amiFamily" not in node_class["spec"]
    assert "spec.amiFamily" not in paths(conversion, Severity.NOTE)


def test_no_ami_family_means_al2023_with_a_note() -> None:
    node_class, conversion = node_class_of(template())
    assert node_class["spec"]["amiSelectorTerms"] == [{"alias": "al2023@latest"}]
    assert "spec.amiFamily" in paths(conversion, Severity.NOTE)
    assert conversion.complete


def test_unknown_ami_family_is_reported() -> None:
    node_class, conversion = node_class_of(template(amiFamily="Ubuntu"))
    assert node_class["spec"]["amiSelectorTerms"] == [{"alias": "al2023@latest"}]
    assert paths(conversion) == ["spec.amiFamily"]


def test_ami_selector_becomes_terms() -> None:
    node_class, _ = node_class_of(
        template(
            amiFamily="AL2",
            amiSelector={"aws::name": "my-ami-*", "aws::owners": "self,123456789012", "team": "a"},
        )
    )
    assert node_class["spec"]["amiFamily"] == "AL2"
    assert node_class["spec"]["amiSelectorTerms"] == [
        {"name": "my-ami-*", "tags": {"team": "a"}, "owner": "self"},
        {"name": "my-ami-*", "tags": {"team": "a"}, "owner": "123456789012"},
    ]
    by_id, _ = node_class_of(template(amiSelector={"aws-ids": "ami-0a,ami-0b"}))
    assert by_id["spec"]["amiSelectorTerms"] == [{"id": "ami-0a"}, {"id": "ami-0b"}]
    assert by_id["spec"]["amiFamily"] == "AL2"


def test_instance_profile_role_and_their_defaults() -> None:
    explicit, conversion = node_class_of(template(instanceProfile="MyProfile"), role="ignored")
    assert explicit["spec"]["instanceProfile"] == "MyProfile"
    assert "role" not in explicit["spec"]
    by_role, _ = node_class_of(template(), role="NodeRole")
    assert by_role["spec"]["role"] == "NodeRole"
    by_profile, _ = node_class_of(template(), instance_profile="P")
    assert by_profile["spec"]["instanceProfile"] == "P"
    derived, conversion = node_class_of(template())
    assert derived["spec"]["instanceProfile"] == "KarpenterNodeInstanceProfile-prod"
    assert "spec.instanceProfile" in paths(conversion, Severity.NOTE)
    unknown, conversion = node_class_of(template(subnetSelector={"Name": "private"}))
    assert paths(conversion) == ["spec.instanceProfile"]
    EC2NodeClass.from_api(unknown)


def test_tags_user_data_disks_metadata_and_monitoring_carry_over() -> None:
    devices = [
        {
            "deviceName": "/dev/xvda",
            "ebs": {
                "volumeSize": "100Gi",
                "volumeType": "gp3",
                "encrypted": True,
                "deleteOnTermination": True,
            },
        }
    ]
    options = {"httpEndpoint": "enabled", "httpPutResponseHopLimit": 2, "httpTokens": "required"}
    node_class, conversion = node_class_of(
        template(
            tags={"team": "a", "kubernetes.io/cluster/prod": "owned"},
            userData="#!/bin/bash\necho hi\n",
            blockDeviceMappings=devices,
            metadataOptions=options,
            detailedMonitoring=True,
            instanceProfile="P",
        )
    )
    spec = node_class["spec"]
    assert spec["tags"] == {"team": "a"}
    assert spec["userData"] == "#!/bin/bash\necho hi\n"
    assert spec["blockDeviceMappings"] == devices
    assert spec["metadataOptions"] == options
    assert spec["detailedMonitoring"] is True
    assert paths(conversion) == ["spec.tags.kubernetes.io/cluster/prod"]
    assert "spec.metadataOptions" not in paths(conversion, Severity.NOTE)
    parsed = EC2NodeClass.from_api(node_class)
    assert parsed.metadata_options.http_put_response_hop_limit == 2


def test_launch_template_and_context_are_reported() -> None:
    _, conversion = node_class_of(template(launchTemplate="lt", context="ctx", instanceProfile="P"))
    assert sorted(paths(conversion)) == ["spec.context", "spec.launchTemplate"]


def test_custom_family_without_selector_is_invalid() -> None:
    with pytest.raises(ValidationError, match=r"spec\.amiFamily"):
        convert([template(amiFamily="Custom")])


def test_input_is_not_modified() -> None:
    docs = [provisioner(kubeletConfiguration=KUBELET), template()]
    before = copy.deepcopy(docs)
    convert(docs)
    assert docs == before
