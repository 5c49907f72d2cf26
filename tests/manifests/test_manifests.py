"""The install manifests: they parse, kustomize renders them, the local API server accepts them,
the configs they carry load with the services' own parsers, and every container is locked down."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from extender.config import ENV_PREFIX as EXTENDER_ENV
from extender.config import ExtenderConfig
from launcher.config import ENV_PREFIX as LAUNCHER_ENV
from launcher.config import LauncherConfig
from localcluster.apiserver.testing import running_apiserver
from localcluster.scheduler.config import (
    BALANCED_ALLOCATION,
    MOST_ALLOCATED,
    NODE_RESOURCES_FIT,
    TAINT_TOLERATION,
    load_scheduler_config,
)
from localcluster.stack import scheduler_configuration
from shared import labels
from shared.config import load_config, settings

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
# Not Kubernetes objects: IAM/CloudFormation and log-shipper samples (tested in their own files).
NOT_KUBERNETES = ("aws", "logging")
# Files kustomize reads that are not resources.
KUSTOMIZE_INPUTS = {"kustomization.yaml"}
# Opt-in kustomizations, not part of the base: they need the Prometheus Operator or cert-manager.
OPTIONAL = {MANIFESTS / "monitoring", MANIFESTS / "tls" / "cert-manager"}


def manifest_files() -> list[Path]:
    return sorted(
        p
        for p in MANIFESTS.rglob("*.yaml")
        if p.name not in KUSTOMIZE_INPUTS
        and p.relative_to(MANIFESTS).parts[0] not in NOT_KUBERNETES
        and not _is_generator_input(p)
    )


def _is_generator_input(path: Path) -> bool:
    """Service config files fed to a configMapGenerator (plain YAML, not Kubernetes objects)."""
    kfile = path.parent / "kustomization.yaml"
    if not kfile.is_file():
        return False
    kustomization = yaml.safe_load(kfile.read_text())
    files = {f for g in kustomization.get("configMapGenerator") or [] for f in g.get("files") or []}
    return path.name in files


def kustomize(directory: Path) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    result = subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    if KUBECTL is None:
        pytest.skip("kubectl not installed")
    return kustomize(MANIFESTS)


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name)]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} matches"
    return matches[0]


def containers(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = doc["spec"]["template"]["spec"]
    yield from spec.get("initContainers") or []
    yield from spec["containers"]


# Structure --------------------------------------------------------------------------------


def test_every_manifest_parses_and_names_its_object() -> None:
    files = manifest_files()
    assert len(files) >= 15, files
    for path in files:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert docs, f"{path}: empty"
        for doc in docs:
            assert isinstance(doc, dict), path
            assert doc.get("apiVersion"), f"{path}: no apiVersion"
            assert doc.get("kind"), f"{path}: no kind"
            assert (doc.get("metadata") or {}).get("name"), f"{path}: {doc.get('kind')} has no name"


def _listed(kustomization: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for key in ("resources", "components"):
        names.update(kustomization.get(key) or [])
    for generator in (kustomization.get("configMapGenerator") or []) + (
        kustomization.get("secretGenerator") or []
    ):
        names.update(f.split("=", 1)[-1] for f in generator.get("files") or [])
        names.update(generator.get("envs") or [])
    names.update(p["path"] for p in kustomization.get("patches") or [] if "path" in p)
    return {n.rstrip("/") for n in names}


def test_every_kustomization_lists_every_file_in_its_folder() -> None:
    kustomizations = sorted(MANIFESTS.rglob("kustomization.yaml"))
    assert len(kustomizations) >= 7
    for kfile in kustomizations:
        folder = kfile.parent
        listed = _listed(yaml.safe_load(kfile.read_text()))
        for name in listed:
            assert (folder / name).exists(), f"{kfile}: lists missing {name}"
        present = {
            p.name
            for p in folder.iterdir()
            if p.name != "kustomization.yaml" and p.suffix in (".yaml", ".yml", ".json", ".env")
        }
        # Sub-folders with their own kustomization are reached through `resources`, except the
        # opt-in ones.
        present |= {
            p.name for p in folder.iterdir() if (p / "kustomization.yaml").is_file() and p not in OPTIONAL
        }
        unlisted = present - listed
        assert not unlisted, f"{kfile}: does not list {sorted(unlisted)}"
    # The CRDs are listed from the top, as manifests/crds/ is not a kustomization of its own.
    top = _listed(yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text()))
    crds = {f"crds/{p.name}" for p in (MANIFESTS / "crds").glob("*.yaml")}
    assert crds
    assert crds <= top


# Rendering ---------------------------------------------------------------------------------


@needs_kubectl
def test_kustomize_renders_the_whole_install(rendered: list[dict[str, Any]]) -> None:
    kinds = {(d["kind"], d["metadata"]["name"].rsplit("-", 1)[0]) for d in rendered}
    for kind in (
        "CustomResourceDefinition",
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "MutatingWebhookConfiguration",
    ):
        assert any(k == kind for k, _ in kinds), kind
    for name in ("jitnode-extender", "jitnode-launcher", "jitnode-scheduler"):
        find(rendered, "Deployment", name)
    images = {c["image"] for d in rendered if d["kind"] == "Deployment" for c in containers(d)}
    assert all(":" in image for image in images), images  # every image pinned by kustomize `images`
    assert any(i.startswith("registry.k8s.io/kube-scheduler:v1.") for i in images)


@needs_kubectl
def test_cluster_settings_reach_the_launcher_and_its_irsa_annotation(rendered: list[dict[str, Any]]) -> None:
    settings = find(rendered, "ConfigMap", "jitnode-cluster")
    account = find(rendered, "ServiceAccount", "jitnode-launcher")
    role_arn = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert role_arn == settings["data"]["LAUNCHER_ROLE_ARN"]
    env = {e["name"]: e for e in next(containers(find(rendered, "Deployment", "jitnode-launcher")))["env"]}
    ref = env["JITNODE_LAUNCHER_CLUSTER_NAME"]["valueFrom"]["configMapKeyRef"]
    assert ref["name"] == settings["metadata"]["name"]  # the generated (hashed) name
    assert env["JITNODE_LAUNCHER_LEADER_IDENTITY"]["value"] == "$(POD_NAME)"


@needs_kubectl
def test_every_container_is_locked_down(rendered: list[dict[str, Any]]) -> None:
    deployments = [d for d in rendered if d["kind"] == "Deployment"]
    assert len(deployments) == 3
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        strategy = deployment["spec"]["strategy"]
        assert strategy["type"] == "RollingUpdate", name
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0, name
        assert deployment["spec"]["replicas"] >= 2, name
        for container in containers(deployment):
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert security["seccompProfile"]["type"] == "RuntimeDefault", name
            assert container["resources"]["requests"], name
            assert container["resources"]["limits"]["memory"], name
            for mount in container.get("volumeMounts") or []:
                assert mount.get("readOnly") or mount["name"] == "tmp", f"{name}: {mount['name']} writable"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name


def _config_file(name: str) -> Path:
    return MANIFESTS / name / "config.yaml"


@needs_kubectl
def test_grace_period_covers_graceful_shutdown(rendered: list[dict[str, Any]]) -> None:
    extender_config = load_config(ExtenderConfig, _config_file("extender"), {}, env_prefix=EXTENDER_ENV)
    launcher_config = load_config(LauncherConfig, _config_file("launcher"), {}, env_prefix=LAUNCHER_ENV)
    for name, shutdown in (
        ("jitnode-extender", extender_config.server.shutdown_grace),
        ("jitnode-launcher", launcher_config.server.shutdown_grace),
    ):
        pod = find(rendered, "Deployment", name)["spec"]["template"]["spec"]
        pre_stop = 0.0
        for container in pod["containers"]:
            command = (((container.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get(
                "command"
            ) or []
            if command[:1] == ["sleep"]:
                pre_stop = float(command[1])
        # preStop, then the service's own grace, then a margin for streams, Lease, informers.
        assert pod["terminationGracePeriodSeconds"] >= pre_stop + shutdown + 10, name


@needs_kubectl
def test_extender_availability_settings(rendered: list[dict[str, Any]]) -> None:
    deployment = find(rendered, "Deployment", "jitnode-extender")
    pod = deployment["spec"]["template"]["spec"]
    keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    assert labels.ZONE in keys
    affinity = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    expressions = affinity["nodeSelectorTerms"][0]["matchExpressions"]
    assert {"key": labels.NODEPOOL, "operator": "DoesNotExist"} in expressions
    pdb = find(rendered, "PodDisruptionBudget", "jitnode-extender")
    assert pdb["spec"]["minAvailable"] == 1
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    service = find(rendered, "Service", "jitnode-extender")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["https"]["port"] == 8443
    assert "metrics" in ports
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "jitnode-extender-tls"
    # Both services present the same demand-stream token Secret.
    launcher = find(rendered, "Deployment", "jitnode-launcher")["spec"]["template"]["spec"]
    launcher_volumes = {v["name"]: v for v in launcher["volumes"]}
    assert volumes["demand-token"]["secret"]["secretName"] == "jitnode-demand-token"
    assert launcher_volumes["demand-token"]["secret"]["secretName"] == "jitnode-demand-token"


@needs_kubectl
def test_webhook_configuration_never_blocks_pods(rendered: list[dict[str, Any]]) -> None:
    config = find(rendered, "MutatingWebhookConfiguration", "jitnode-scheduler-name")
    (hook,) = config["webhooks"]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["sideEffects"] == "None"
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["reinvocationPolicy"] == "Never"
    assert hook["timeoutSeconds"] <= 5
    assert hook["namespaceSelector"]["matchLabels"] == {labels.SCHEDULING_LABEL: labels.SCHEDULING_ENABLED}
    assert hook["rules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE"],
            "resources": ["pods"],
            "scope": "Namespaced",
        }
    ]
    service = hook["clientConfig"]["service"]
    assert (service["name"], service["namespace"], service["path"], service["port"]) == (
        "jitnode-extender",
        "jitnode",
        "/mutate",
        8443,
    )


@needs_kubectl
def test_cert_manager_component_injects_the_ca(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(MANIFESTS, overlay)],
                "components": [os.path.relpath(MANIFESTS / "tls" / "cert-manager", overlay)],
            }
        )
    )
    docs = kustomize(overlay)
    webhook = find(docs, "MutatingWebhookConfiguration", "jitnode-scheduler-name")
    assert webhook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "jitnode/jitnode-extender"
    secrets = {
        d["spec"]["secretName"] for d in docs if d["kind"] == "Certificate" and not d["spec"].get("isCA")
    }
    assert secrets == {"jitnode-extender-tls", "jitnode-launcher-tls"}
    extender = find(docs, "Certificate", "jitnode-extender")
    assert "jitnode-extender.jitnode.svc" in extender["spec"]["dnsNames"]


# Configuration carried by the manifests ------------------------------------------------------


def test_scheduler_config_is_valid_and_points_at_the_extender() -> None:
    config = load_scheduler_config(MANIFESTS / "scheduler" / "config.yaml")
    assert config.scheduler_names == (labels.SCHEDULER_NAME,)
    (extender,) = config.extenders
    assert extender.url("filter") == "https://jitnode-extender.jitnode.svc:8443/jitnode/filter"
    # Filter only (issue 11): prioritize halves kube-scheduler's throughput; packing and
    # avoiding nodes about to go come from in-tree scoring and jitnode's taints instead.
    assert (extender.filter_verb, extender.prioritize_verb) == ("filter", "")
    assert extender.enable_https
    assert extender.node_cache_capable
    assert extender.ignorable
    assert extender.http_timeout == 1.0
    assert extender.tls is not None
    assert not extender.tls.insecure
    assert extender.tls.ca_file or extender.tls.ca_data
    leader = config.extra["leaderElection"]
    assert leader["leaderElect"] is True
    assert leader["resourceName"] == labels.SCHEDULER_NAME


def test_scheduler_profile_bin_packs_and_scores_taints_in_tree() -> None:
    (profile,) = load_scheduler_config(MANIFESTS / "scheduler" / "config.yaml").profiles
    scoring = profile.scoring
    assert scoring.fit_strategy == MOST_ALLOCATED
    assert scoring.fit_resources == (("cpu", 1), ("memory", 1))
    # Packing outweighs NodeResourcesBalancedAllocation as the extender's prioritize did (its
    # weight was 5); TaintToleration (PreferNoSchedule candidates) keeps its default weight.
    assert scoring.weight(NODE_RESOURCES_FIT) == 5
    assert scoring.weight(BALANCED_ALLOCATION) == 1
    assert scoring.weight(TAINT_TOLERATION) == 3


def test_local_cluster_runs_the_shipped_profile() -> None:
    shipped = load_scheduler_config(MANIFESTS / "scheduler" / "config.yaml")
    local = load_scheduler_config(scheduler_configuration("http://127.0.0.1:1/jitnode"))
    assert local.scheduler_names == ("default-scheduler",)
    assert local.profiles[0].scoring == shipped.profiles[0].scoring
    (extender,) = local.extenders
    assert (extender.filter_verb, extender.prioritize_verb) == ("filter", "")
    assert (extender.node_cache_capable, extender.ignorable) == (True, True)
    opt_in = load_scheduler_config(scheduler_configuration("http://127.0.0.1:1/jitnode", prioritize=True))
    assert (opt_in.extenders[0].prioritize_verb, opt_in.extenders[0].weight) == ("prioritize", 5)


def test_extender_url_prefix_matches_the_extender_config() -> None:
    scheduler = load_scheduler_config(MANIFESTS / "scheduler" / "config.yaml")
    extender = load_config(ExtenderConfig, _config_file("extender"), {}, env_prefix=EXTENDER_ENV)
    url = scheduler.extenders[0].url_prefix
    assert url.endswith(f":{extender.server.port}{extender.server.prefix}")


def test_service_configs_load_with_the_services_parsers() -> None:
    extender = load_config(ExtenderConfig, _config_file("extender"), {}, env_prefix=EXTENDER_ENV)
    assert extender.stream.url.startswith("wss://jitnode-launcher.jitnode.svc:8443/")
    assert extender.stream.token_file
    assert extender.stream.ca_file
    launcher = load_config(LauncherConfig, _config_file("launcher"), {}, env_prefix=LAUNCHER_ENV)
    assert launcher.server.tls_cert_file
    assert launcher.server.demand_token_file
    assert launcher.leader.enabled
    assert launcher.leader.name == "jitnode-launcher"


@needs_kubectl
def test_deployment_env_overrides_are_real_settings(rendered: list[dict[str, Any]]) -> None:
    """Every JITNODE_LAUNCHER_* variable names a launcher setting (unknown ones would be ignored)."""
    env = next(containers(find(rendered, "Deployment", "jitnode-launcher")))["env"]
    values = {e["name"]: "x" for e in env if e["name"].startswith(LAUNCHER_ENV)}
    values["JITNODE_LAUNCHER_AWS_REGION"] = "eu-west-1"
    loaded = load_config(LauncherConfig, _config_file("launcher"), values, env_prefix=LAUNCHER_ENV)
    assert loaded.aws.region == "eu-west-1"
    assert loaded.cluster.name == loaded.cluster.endpoint == loaded.leader.identity == "x"


def test_generate_certs_script_issues_verifiable_certificates(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    script = MANIFESTS / "tls" / "generate-certs.sh"
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    secrets = {d["metadata"]["name"]: d for d in docs}
    assert set(secrets) == {"jitnode-extender-tls", "jitnode-launcher-tls", "jitnode-demand-token"}
    for name in ("jitnode-extender", "jitnode-launcher"):
        data = secrets[f"{name}-tls"]["data"]
        for key in ("tls.crt", "tls.key", "ca.crt"):
            (tmp_path / f"{name}-{key}").write_bytes(base64.b64decode(data[key]))
        verify = subprocess.run(
            [
                openssl,
                "verify",
                "-CAfile",
                str(tmp_path / f"{name}-ca.crt"),
                str(tmp_path / f"{name}-tls.crt"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert verify.returncode == 0, verify.stderr
        text = subprocess.run(
            [openssl, "x509", "-noout", "-ext", "subjectAltName", "-in", str(tmp_path / f"{name}-tls.crt")],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        assert f"DNS:{name}.jitnode.svc" in text
    token = base64.b64decode(secrets["jitnode-demand-token"]["data"]["token"])
    assert len(token) == 64
    assert "caBundle" in result.stdout.splitlines()[-1]


# Against the local API server -----------------------------------------------------------------


async def _kubectl(config: Path, *args: str) -> str:
    assert KUBECTL is not None
    proc = await asyncio.create_subprocess_exec(
        KUBECTL,
        "--kubeconfig",
        str(config),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {err.decode()}"
    return out.decode()


@needs_kubectl
async def test_server_side_dry_run_apply_succeeds(tmp_path: Path) -> None:
    async with running_apiserver() as (server, _):
        config = server.write_kubeconfig(tmp_path / "kubeconfig")
        # As on a real cluster, the CRDs and the namespace must exist before objects that use them.
        await _kubectl(config, "apply", "--validate=false", "-f", str(MANIFESTS / "crds"))
        await _kubectl(config, "apply", "--validate=false", "-f", str(MANIFESTS / "namespace.yaml"))
        out = await _kubectl(config, "apply", "--dry-run=server", "--validate=false", "-k", str(MANIFESTS))
        lines = [line for line in out.splitlines() if line.strip()]
        assert lines, out
        assert all("(server dry run)" in line for line in lines), out
        for expected in (
            "deployment.apps/jitnode-extender",
            "deployment.apps/jitnode-launcher",
            "deployment.apps/jitnode-scheduler",
            "mutatingwebhookconfiguration.admissionregistration.k8s.io/jitnode-scheduler-name",
            "clusterrole.rbac.authorization.k8s.io/jitnode-launcher",
            "rolebinding.rbac.authorization.k8s.io/jitnode-scheduler-leader-election",
            "poddisruptionbudget.policy/jitnode-extender",
        ):
            assert any(line.startswith(expected) for line in lines), expected
        # A dry run stores nothing.
        deployments = await _kubectl(config, "get", "deployments", "-n", "jitnode", "-o", "name")
        assert deployments.strip() == ""


# Variables the Deployment sets ahead of the extender supporting them (it ignores unknown ones).
EXTENDER_PENDING_ENV: set[str] = set()


@needs_kubectl
def test_extender_env_overrides_are_real_settings(rendered: list[dict[str, Any]]) -> None:
    known = {s.env_name(EXTENDER_ENV) for s in settings(ExtenderConfig)}
    env = next(containers(find(rendered, "Deployment", "jitnode-extender")))["env"]
    names = {e["name"] for e in env if e["name"].startswith(EXTENDER_ENV)}
    assert names - EXTENDER_PENDING_ENV <= known
    assert not EXTENDER_PENDING_ENV & known, "extender now has TLS settings: drop them from PENDING"
