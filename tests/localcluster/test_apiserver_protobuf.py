"""Protobuf request bodies: kubectl's captured bytes, Go's zero-value rules, and refusals.

The bodies under ``KUBECTL_*`` were captured from kubectl v1.32.4 (``kubectl create ...``)
against this server; the rest are built with the tiny encoder below, which writes the wire
format as Go's protobuf encoder does (every non-pointer field, even when empty).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from localcluster.apiserver import APIServer, protobuf
from shared.errors import FieldError

ROOT = Path(__file__).resolve().parents[2]

# kubectl create namespace t1
KUBECTL_NAMESPACE = bytes.fromhex(
    "6b3873000a0f0a02763112094e616d657370616365121a0a120a02743112001a0022002a003200380042"
    "0012001a020a001a002200"
)
# kubectl create deployment d1 --image=pause --replicas=2 --port=8080
KUBECTL_DEPLOYMENT = bytes.fromhex(
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412b5010a1d0a02643112001a0022002a"
    "003200380042005a090a03617070120264311285010802120b0a090a03617070120264311a6c0a1b0a0012"
    "001a0022002a003200380042005a090a0361707012026431124d122f0a057061757365120570617573652a"
    "00320b0a00100018903f22002a0042006a007200800100880100900100a201001a00320042004a00520058"
    "00600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a002200"
)
# kubectl create service clusterip s1 --tcp=80:8080
KUBECTL_SERVICE = bytes.fromhex(
    "6b3873000a0d0a02763112075365727669636512660a1d0a02733112001a0022002a003200380042005a09"
    "0a036170701202733112410a1b0a0738302d38303830120354435018502207080010903f1a00280012090a"
    "03617070120273311a002209436c757374657249503a00420052005a00600068001a020a001a002200"
)
# kubectl create poddisruptionbudget p1 --selector=a=b --min-available=1
KUBECTL_PDB = bytes.fromhex(
    "6b3873000a200a09706f6c6963792f76311213506f6444697372757074696f6e42756467657412340a120a"
    "02703112001a0022002a0032003800420012120a06080010011a0012080a060a01611201621a0a08001800"
    "2000280030001a002200"
)


# ------------------------------------------------------------------ a tiny encoder
def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers travel as 64-bit two's complement
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def num(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value)


def raw(field: int, data: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(data)) + data


def text(field: int, value: str) -> bytes:
    return raw(field, value.encode())


def msg(field: int, *parts: bytes) -> bytes:
    return raw(field, b"".join(parts))


def entry(field: int, key: str, value: bytes) -> bytes:
    """One map entry: key as field 1, the value already encoded as field 2."""
    return msg(field, text(1, key), value)


def envelope(api_version: str, kind: str, *parts: bytes, encoding: str = "") -> bytes:
    return (
        protobuf.MAGIC
        + msg(1, text(1, api_version), text(2, kind))
        + msg(2, *parts)
        + text(3, encoding)
        + text(4, "")
    )


EMPTY_META = msg(1, text(1, "x"), text(2, ""), text(3, ""), num(7, 0), msg(8))


# ------------------------------------------------------------------ kubectl's own bytes
def test_kubectl_namespace() -> None:
    assert protobuf.decode(KUBECTL_NAMESPACE) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "t1", "creationTimestamp": None},
        "spec": {},
        "status": {},
    }


def test_kubectl_deployment_matches_its_json_form() -> None:
    """What ``kubectl create deployment --dry-run=client -o json`` prints for the same flags."""
    labels = {"app": "d1"}
    assert protobuf.decode(KUBECTL_DEPLOYMENT) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d1", "creationTimestamp": None, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"creationTimestamp": None, "labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "pause",
                            "image": "pause",
                            "ports": [{"containerPort": 8080}],
                            "resources": {},
                        }
                    ]
                },
            },
            "strategy": {},
        },
        "status": {},
    }


def test_kubectl_service_and_pdb_int_or_string() -> None:
    service = protobuf.decode(KUBECTL_SERVICE)
    assert service["spec"] == {
        "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
        "selector": {"app": "s1"},
        "type": "ClusterIP",
    }
    assert service["status"] == {"loadBalancer": {}}
    pdb = protobuf.decode(KUBECTL_PDB)
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": {"a": "b"}}}
    # Not omitempty in Go: the JSON form carries these zeros too.
    assert pdb["status"] == {
        "disruptionsAllowed": 0,
        "currentHealthy": 0,
        "desiredHealthy": 0,
        "expectedPods": 0,
    }


# ------------------------------------------------------------------ Go's JSON rules
def test_zero_values_follow_omitempty_and_pointers() -> None:
    body = envelope(
        "v1",
        "ServiceAccount",
        EMPTY_META,
        msg(3, text(1, "")),  # LocalObjectReference.name is omitempty
        num(4, 0),  # *bool set to false: kept
    )
    assert protobuf.decode(body) == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "x", "creationTimestamp": None},
        "imagePullSecrets": [{}],
        "automountServiceAccountToken": False,
    }


def test_times_bytes_quantities_and_negative_numbers() -> None:
    meta = msg(
        1,
        text(1, "x"),
        msg(8, num(1, 1_700_000_000), num(2, 5)),
        msg(9, num(1, 1_700_000_060)),
        num(10, 0),
        entry(11, "k", text(2, "v")),
    )
    container = msg(
        2,
        text(1, "c"),
        msg(8, entry(1, "cpu", msg(2, text(1, "500m"))), entry(2, "memory", msg(2, text(1, "1Gi")))),
    )
    toleration = msg(22, text(1, "k"), text(2, "Exists"), num(5, -5))
    spec = msg(2, num(1, 0), msg(3, msg(2, container, toleration)))
    out = protobuf.decode(envelope("apps/v1", "Deployment", meta, spec))
    assert out["metadata"] == {
        "name": "x",
        "creationTimestamp": "2023-11-14T22:13:20Z",
        "deletionTimestamp": "2023-11-14T22:14:20Z",
        "deletionGracePeriodSeconds": 0,
        "labels": {"k": "v"},
    }
    pod = out["spec"]["template"]["spec"]
    assert out["spec"]["replicas"] == 0
    assert pod["containers"][0]["resources"] == {"limits": {"cpu": "500m"}, "requests": {"memory": "1Gi"}}
    assert pod["tolerations"] == [{"key": "k", "operator": "Exists", "tolerationSeconds": -5}]
    secret = protobuf.decode(envelope("v1", "Secret", EMPTY_META, entry(2, "a", raw(2, b"\x00\xff"))))
    assert secret["data"] == {"a": "AP8="}


def test_embedded_structs_are_inlined() -> None:
    volume = msg(1, text(1, "v"), msg(2, msg(19, msg(1, text(1, "settings")), num(3, 420))))
    probe = msg(11, msg(1, msg(2, text(1, "/healthz"), msg(2, num(1, 1), text(3, "http")))), num(4, 10))
    pod = msg(3, msg(2, volume, msg(2, text(1, "c"), probe)))
    out = protobuf.decode(envelope("apps/v1", "Deployment", EMPTY_META, msg(2, pod)))
    spec = out["spec"]["template"]["spec"]
    assert spec["volumes"] == [{"name": "v", "configMap": {"name": "settings", "defaultMode": 420}}]
    assert spec["containers"][0]["readinessProbe"] == {
        "httpGet": {"path": "/healthz", "port": "http"},
        "periodSeconds": 10,
    }


@pytest.mark.parametrize("packed", [True, False])
def test_repeated_numbers_packed_or_not(packed: bool) -> None:
    groups = raw(4, varint(1) + varint(2)) if packed else num(4, 1) + num(4, 2)
    pod = msg(3, msg(2, msg(14, groups)))
    out = protobuf.decode(envelope("apps/v1", "Deployment", EMPTY_META, msg(2, pod)))
    assert out["spec"]["template"]["spec"]["securityContext"] == {"supplementalGroups": [1, 2]}


@given(
    data=st.dictionaries(st.text(min_size=1), st.text(), max_size=5),
    labels=st.dictionaries(st.text(min_size=1), st.text(), max_size=3),
)
def test_configmap_maps_round_trip(data: dict[str, str], labels: dict[str, str]) -> None:
    meta = msg(1, text(1, "x"), *(entry(11, k, text(2, v)) for k, v in labels.items()))
    body = envelope("v1", "ConfigMap", meta, *(entry(2, k, text(2, v)) for k, v in data.items()))
    out = protobuf.decode(body)
    assert out.get("data", {}) == data
    assert out["metadata"].get("labels", {}) == labels


# ------------------------------------------------------------------ refusals
def test_unknown_field_names_message_number_and_path() -> None:
    pod = msg(3, msg(2, msg(2, text(1, "c")), raw(99, b"")))
    with pytest.raises(FieldError, match=r"unknown field 99 in message PodSpec at spec\.template\.spec"):
        protobuf.decode(envelope("apps/v1", "Deployment", EMPTY_META, msg(2, pod)))
    # A known field whose message is not tabled (a CSI volume) is refused the same way.
    csi = msg(1, text(1, "v"), msg(2, msg(28, text(1, "driver"))))
    with pytest.raises(FieldError, match="unknown field 28 in message VolumeSource"):
        protobuf.decode(envelope("apps/v1", "Deployment", EMPTY_META, msg(2, msg(3, msg(2, csi)))))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{}", "does not start with"),
        (envelope("v1", "ConfigMap", num(1, 3)), "wire type 0, not bytes"),
        (envelope("v1", "ConfigMap", EMPTY_META, text(4, "x")), "wire type 2, not varint"),
        (envelope("v1", "ConfigMap", EMPTY_META)[:-6], "runs past the end"),
        (envelope("v1", "ConfigMap", encoding="gzip"), "content encoding 'gzip'"),
        (protobuf.MAGIC + b"\x08", "truncated"),
        (envelope("v1", "ConfigMap", msg(1, raw(1, b"\xff"))), "not valid UTF-8"),
    ],
)
def test_malformed_bodies_are_field_errors(body: bytes, message: str) -> None:
    with pytest.raises(FieldError, match=message):
        protobuf.decode(body)


def test_kinds_without_tables_are_unsupported() -> None:
    with pytest.raises(protobuf.UnsupportedKind) as caught:
        protobuf.decode(envelope("v1", "Node", EMPTY_META))
    assert (caught.value.api_version, caught.value.kind) == ("v1", "Node")


# ------------------------------------------------------------------ over HTTP
@pytest.fixture
async def server() -> AsyncIterator[APIServer]:
    server = APIServer(controllers=False)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def post(server: APIServer, path: str, body: bytes, content_type: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url + path, data=body, headers={"Content-Type": content_type}) as resp,
    ):
        return resp.status, orjson.loads(await resp.read())


async def test_protobuf_create_is_stored_like_json(server: APIServer) -> None:
    status, created = await post(
        server, "/apis/apps/v1/namespaces/default/deployments", KUBECTL_DEPLOYMENT, protobuf.CONTENT_TYPE
    )
    assert status == 201, created
    assert created["metadata"]["namespace"] == "default"
    assert created["metadata"]["creationTimestamp"] is not None
    assert created["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 8080}]


async def test_refusals_over_http(server: APIServer) -> None:
    ct = protobuf.CONTENT_TYPE
    accepted = "accepted media types include: application/json, application/yaml"
    status, node = await post(server, "/api/v1/nodes", envelope("v1", "Node", EMPTY_META), ct)
    assert (status, node["reason"]) == (415, "UnsupportedMediaType")
    assert node["message"] == f"the body of the request was in an unknown format - {accepted}"
    bad = envelope("v1", "ConfigMap", EMPTY_META, raw(42, b""))
    status, unknown = await post(server, "/api/v1/namespaces/default/configmaps", bad, ct)
    assert status == 400
    assert "unknown field 42 in message ConfigMap" in unknown["message"]
    crd = yaml.safe_load((ROOT / "manifests/crds/jitnode.io_nodepools.yaml").read_text())
    status, _ = await post(
        server,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        orjson.dumps(crd),
        "application/json",
    )
    assert status == 201
    status, custom = await post(
        server, "/apis/jitnode.io/v1/nodepools", envelope("jitnode.io/v1", "NodePool", EMPTY_META), ct
    )
    assert (status, custom["reason"]) == (415, "UnsupportedMediaType")
