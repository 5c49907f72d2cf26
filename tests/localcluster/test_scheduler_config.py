"""KubeSchedulerConfiguration parsing: the fields a real kube-scheduler reads, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from localcluster.scheduler import load_scheduler_config
from localcluster.scheduler.config import (
    BALANCED_ALLOCATION,
    DEFAULT_EXTENDER_TIMEOUT,
    DEFAULT_SCHEDULER_NAME,
    DEFAULT_SCORE_WEIGHTS,
    LEAST_ALLOCATED,
    MOST_ALLOCATED,
    NODE_AFFINITY,
    NODE_RESOURCES_FIT,
    POD_TOPOLOGY_SPREAD,
    SYSTEM_SPREAD_ARGS,
    TAINT_TOLERATION,
    Profile,
    Scoring,
    SpreadArgs,
)
from shared.errors import ValidationError
from shared.labels import ZONE
from shared.topologyspread import SpreadConstraint

SHIPPED = Path(__file__).resolve().parents[2] / "manifests" / "scheduler" / "config.yaml"
HEADER = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"

FULL = """
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: false
clientConnection:
  kubeconfig: /etc/kubernetes/scheduler.conf
podInitialBackoffSeconds: 2
podMaxBackoffSeconds: 20
profiles:
  - schedulerName: default-scheduler
  - schedulerName: jitnode
extenders:
  - urlPrefix: "http://jitnode-extender.kube-system.svc:8080/scheduler/"
    filterVerb: filter
    prioritizeVerb: prioritize
    weight: 5
    nodeCacheCapable: true
    ignorable: true
    httpTimeout: 1m30s
    managedResources:
      - name: jitnode.io/capacity
        ignoredByScheduler: true
      - name: example.com/gpu
  - urlPrefix: https://other:8443
    filterVerb: filter
    bindVerb: bind
    enableHTTPS: true
    tlsConfig:
      insecure: true
"""


def test_full_config_is_read() -> None:
    config = load_scheduler_config(FULL)
    assert config.scheduler_names == ("default-scheduler", "jitnode")
    assert (config.pod_initial_backoff, config.pod_max_backoff) == (2.0, 20.0)
    first, second = config.extenders
    assert first.url("filter") == "http://jitnode-extender.kube-system.svc:8080/scheduler/filter"
    assert first.http_timeout == 90.0
    assert first.weight == 5
    assert first.node_cache_capable
    assert first.ignorable
    assert [(r.name, r.ignored_by_scheduler) for r in first.managed_resources] == [
        ("jitnode.io/capacity", True),
        ("example.com/gpu", False),
    ]
    assert config.ignored_resources() == frozenset({"jitnode.io/capacity"})
    assert second.bind_verb == "bind"
    assert second.enable_https
    assert second.tls is not None
    assert second.tls.insecure
    assert second.http_timeout == DEFAULT_EXTENDER_TIMEOUT
    assert "leaderElection" in config.extra


@pytest.mark.parametrize(("text", "seconds"), [("5s", 5.0), ("300ms", 0.3), ("1m30s", 90.0), ("1.5s", 1.5)])
def test_http_timeout_go_durations(text: str, seconds: float) -> None:
    config = load_scheduler_config(
        "apiVersion: kubescheduler.config.k8s.io/v1beta3\nkind: KubeSchedulerConfiguration\n"
        f"extenders:\n- urlPrefix: http://x\n  filterVerb: f\n  httpTimeout: {text}\n"
    )
    assert config.extenders[0].http_timeout == pytest.approx(seconds)


def test_defaults_and_file_path(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n")
    for source in (path, str(path)):
        config = load_scheduler_config(source)
        assert config.scheduler_names == (DEFAULT_SCHEDULER_NAME,)
        assert config.extenders == ()
        assert (config.pod_initial_backoff, config.pod_max_backoff) == (1.0, 10.0)


def _fit(strategy: str) -> str:
    return (
        "profiles:\n- pluginConfig:\n  - name: NodeResourcesFit\n    args:\n"
        f"      scoringStrategy:\n          {strategy}\n"
    )


def test_score_plugins_and_fit_strategy_are_read() -> None:
    config = load_scheduler_config(
        HEADER
        + """profiles:
- schedulerName: packer
  plugins:
    score:
      disabled: [{name: NodeResourcesBalancedAllocation}, {name: ImageLocality}]
      enabled: [{name: NodeResourcesFit, weight: 5}, {name: NodeAffinity}, {name: PodTopologySpread}]
  pluginConfig:
  - name: DefaultPreemption
    args: {minCandidateNodesPercentage: 10}
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources: [{name: cpu, weight: 2}, {name: memory}]
- schedulerName: nothing
  plugins:
    score:
      disabled: [{name: "*"}]
      enabled: [{name: TaintToleration, weight: 7}]
- schedulerName: default-scheduler
"""
    )
    packer, nothing, default = config.profiles
    assert packer.scoring.weights == {
        TAINT_TOLERATION: 3,
        NODE_AFFINITY: 1,  # enabled without a weight: 1, as kube-scheduler's framework sets it
        NODE_RESOURCES_FIT: 5,
        BALANCED_ALLOCATION: 0,
        POD_TOPOLOGY_SPREAD: 1,  # named in score.enabled: its weight replaces the default 2
    }
    assert packer.scoring.fit_strategy == MOST_ALLOCATED
    assert packer.scoring.fit_resources == (("cpu", 2), ("memory", 1))
    assert nothing.scoring.weights == {
        TAINT_TOLERATION: 7,
        NODE_AFFINITY: 0,
        NODE_RESOURCES_FIT: 0,
        BALANCED_ALLOCATION: 0,
        POD_TOPOLOGY_SPREAD: 0,
    }
    assert default.scoring == Scoring()
    assert default.scoring.weights == DEFAULT_SCORE_WEIGHTS
    assert default.scoring.fit_strategy == LEAST_ALLOCATED
    assert config.profile("nothing") is nothing
    assert config.profile("unknown") is packer  # the first, as a renamed single profile


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ("apiVersion: v1\nkind: KubeSchedulerConfiguration\n", "apiVersion"),
        ("apiVersion: kubescheduler.config.k8s.io/v1\nkind: Pod\n", "kind"),
        ("extenders:\n- filterVerb: f\n", "extenders[0].urlPrefix"),
        ("extenders:\n- urlPrefix: http://x\n  httpTimeout: soon\n", "extenders[0].httpTimeout"),
        ("extenders:\n- urlPrefix: http://x\n  prioritizeVerb: p\n", "extenders[0].weight"),
        ("extenders:\n- urlPrefix: http://x\n  filtreVerb: f\n", "extenders[0].filtreVerb"),
        ("extenders:\n- urlPrefix: http://x\n  nodeCacheCapable: 'yes'\n", "extenders[0].nodeCacheCapable"),
        ("profiles:\n- schedulerName: a\n- schedulerName: a\n", "profiles[1].schedulerName"),
        ("podInitialBackoffSeconds: 5\npodMaxBackoffSeconds: 1\n", "podMaxBackoffSeconds"),
        (
            "extenders:\n- urlPrefix: http://a\n  bindVerb: b\n- urlPrefix: http://b\n  bindVerb: b\n",
            "extenders",
        ),
        (
            _fit("type: RequestedToCapacityRatio"),
            "profiles[0].pluginConfig[0].args.scoringStrategy.type",
        ),
        (_fit("type: Most"), "profiles[0].pluginConfig[0].args.scoringStrategy.type"),
        (
            _fit("type: MostAllocated\n          resources: [{name: cpu, weight: 101}]"),
            "profiles[0].pluginConfig[0].args.scoringStrategy.resources[0].weight",
        ),
        (
            "profiles:\n- plugins:\n    score:\n      enabled: [{name: NodeResourcesFit, weight: -1}]\n",
            "profiles[0].plugins.score.enabled[0].weight",
        ),
    ],
)
def test_bad_config_names_the_field(body: str, path: str) -> None:
    text = body
    if "apiVersion" not in body:
        text = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n" + body
    with pytest.raises(ValidationError) as caught:
        load_scheduler_config(text)
    assert path in [e.path for e in caught.value.errors]


def _spread_profile(plugins: str = "", plugin_config: str = "") -> Profile:
    (profile,) = load_scheduler_config(
        HEADER + "profiles:\n- schedulerName: s\n" + plugins + plugin_config
    ).profiles
    return profile


@pytest.mark.parametrize(
    ("plugins", "weight", "filters"),
    [
        ("", 2, True),
        ("  plugins:\n    multiPoint:\n      disabled: [{name: PodTopologySpread}]\n", 0, False),
        ("  plugins:\n    multiPoint:\n      disabled: [{name: '*'}]\n", 0, False),
        ("  plugins:\n    filter:\n      disabled: [{name: PodTopologySpread}]\n", 2, False),
        ("  plugins:\n    filter:\n      disabled: [{name: '*'}]\n", 2, False),
        ("  plugins:\n    score:\n      disabled: [{name: PodTopologySpread}]\n", 0, True),
        ("  plugins:\n    multiPoint:\n      enabled: [{name: PodTopologySpread, weight: 7}]\n", 7, True),
        (
            "  plugins:\n    multiPoint:\n      disabled: [{name: '*'}]\n"
            "    score:\n      enabled: [{name: PodTopologySpread}]\n",
            1,
            False,
        ),
        (
            "  plugins:\n    multiPoint:\n      disabled: [{name: PodTopologySpread}]\n"
            "    filter:\n      enabled: [{name: PodTopologySpread}]\n",
            0,
            True,
        ),
    ],
)
def test_pod_topology_spread_is_enabled_and_weighted_like_kube_scheduler(
    plugins: str, weight: int, filters: bool
) -> None:
    profile = _spread_profile(plugins)
    assert profile.scoring.weight(POD_TOPOLOGY_SPREAD) == weight
    assert profile.spread_filter is filters


def test_multi_point_weights_apply_to_every_modelled_score_plugin() -> None:
    profile = _spread_profile(
        "  plugins:\n    multiPoint:\n      enabled: [{name: NodeResourcesFit, weight: 4}]\n"
        "      disabled: [{name: TaintToleration}]\n"
        "    score:\n      enabled: [{name: NodeResourcesFit, weight: 6}]\n"
    )
    assert profile.scoring.weights == {**DEFAULT_SCORE_WEIGHTS, TAINT_TOLERATION: 0, NODE_RESOURCES_FIT: 6}
    assert _spread_profile(
        "  plugins:\n    multiPoint:\n      enabled: [{name: NodeResourcesFit, weight: 4}]\n"
    ).scoring.weights == {**DEFAULT_SCORE_WEIGHTS, NODE_RESOURCES_FIT: 4}


def test_pod_topology_spread_args_are_read_per_profile() -> None:
    profile = _spread_profile(
        plugin_config="  pluginConfig:\n  - name: PodTopologySpread\n    args:\n      defaultingType: List\n"
        "      defaultConstraints:\n      - {topologyKey: topology.kubernetes.io/zone, maxSkew: 1,"
        " whenUnsatisfiable: DoNotSchedule}\n"
    )
    assert profile.spread == SpreadArgs((SpreadConstraint(ZONE, 1, hard=True),), system_defaulted=False)
    assert _spread_profile().spread is SYSTEM_SPREAD_ARGS
    with pytest.raises(ValidationError) as caught:
        _spread_profile(
            plugin_config="  pluginConfig:\n  - name: PodTopologySpread\n    args:\n"
            "      defaultConstraints: [{topologyKey: x, maxSkew: 1, whenUnsatisfiable: DoNotSchedule}]\n"
        )
    assert [e.path for e in caught.value.errors] == ["profiles[0].pluginConfig[0].args.defaultingType"]


def test_shipped_profile_spreads_as_a_real_kube_scheduler() -> None:
    """The shipped profile names no PodTopologySpread settings: the system defaults, the filter
    and the default weight 2 all apply, as on the real jitnode-scheduler."""
    (profile,) = load_scheduler_config(SHIPPED).profiles
    assert profile.spread is SYSTEM_SPREAD_ARGS
    assert profile.spread_filter
    assert profile.scoring.weight(POD_TOPOLOGY_SPREAD) == 2
