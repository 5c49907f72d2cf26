"""KubeSchedulerConfiguration, the file a real kube-scheduler is started with.

The local scheduler reads the same YAML as ``kube-scheduler --config`` so that the manifests
shipped for a real cluster (profiles, the jitnode extender entry) are exercised as-is in tests.
Only what changes scheduling decisions is modelled: profile names, each profile's score
plugin weights (``plugins.score``) and ``NodeResourcesFit`` scoring strategy (``pluginConfig``),
extenders and the pod backoff bounds; other top-level fields (leaderElection,
clientConnection, ...) are accepted and ignored, as they only concern the process around the
scheduler. Score plugins the local scheduler does not model (ImageLocality, InterPodAffinity,
PodTopologySpread, VolumeBinding) may be named and are ignored; a scoring strategy it does not
model (RequestedToCapacityRatio) is refused rather than scored differently from a real one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from shared.api.durations import parse_go_duration
from shared.errors import FieldError, ValidationError

API_VERSIONS: Final = frozenset({"kubescheduler.config.k8s.io/v1", "kubescheduler.config.k8s.io/v1beta3"})
KIND: Final = "KubeSchedulerConfiguration"
DEFAULT_SCHEDULER_NAME: Final = "default-scheduler"
# pkg/scheduler/extender.go: used when httpTimeout is unset or zero.
DEFAULT_EXTENDER_TIMEOUT: Final = 5.0
DEFAULT_POD_INITIAL_BACKOFF: Final = 1.0
DEFAULT_POD_MAX_BACKOFF: Final = 10.0

# Score plugins the local scheduler models, with kube-scheduler's default weights
# (pkg/scheduler/apis/config/v1/default_plugins.go).
TAINT_TOLERATION: Final = "TaintToleration"
NODE_AFFINITY: Final = "NodeAffinity"
NODE_RESOURCES_FIT: Final = "NodeResourcesFit"
BALANCED_ALLOCATION: Final = "NodeResourcesBalancedAllocation"
DEFAULT_SCORE_WEIGHTS: Final = {
    TAINT_TOLERATION: 3,
    NODE_AFFINITY: 2,
    NODE_RESOURCES_FIT: 1,
    BALANCED_ALLOCATION: 1,
}
# NodeResourcesFit scoring strategies; RequestedToCapacityRatio is not modelled.
LEAST_ALLOCATED: Final = "LeastAllocated"
MOST_ALLOCATED: Final = "MostAllocated"
REQUESTED_TO_CAPACITY_RATIO: Final = "RequestedToCapacityRatio"
DEFAULT_FIT_RESOURCES: Final = (("cpu", 1), ("memory", 1))
# ValidateNodeResourcesFitArgs: each resource weight is within 1..100.
_MAX_RESOURCE_WEIGHT: Final = 100

_EXTENDER_FIELDS: Final = frozenset(
    {
        "urlPrefix",
        "filterVerb",
        "preemptVerb",
        "prioritizeVerb",
        "bindVerb",
        "weight",
        "enableHTTPS",
        "tlsConfig",
        "httpTimeout",
        "nodeCacheCapable",
        "managedResources",
        "ignorable",
    }
)
_TLS_FIELDS: Final = frozenset(
    {"insecure", "serverName", "certFile", "keyFile", "caFile", "certData", "keyData", "caData"}
)


@dataclass(frozen=True, slots=True)
class ManagedResource:
    """An extended resource the extender manages; ``ignored_by_scheduler`` skips it in NodeResourcesFit."""

    name: str
    ignored_by_scheduler: bool = False


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """How to reach an HTTPS extender (file paths are read when the client starts)."""

    insecure: bool = False
    server_name: str = ""
    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    cert_data: str = ""
    key_data: str = ""
    ca_data: str = ""


@dataclass(frozen=True, slots=True)
class ExtenderConfig:
    """One ``extenders[]`` entry; an empty verb means the extender does not implement that call."""

    url_prefix: str
    filter_verb: str = ""
    prioritize_verb: str = ""
    preempt_verb: str = ""
    bind_verb: str = ""
    weight: int = 0
    enable_https: bool = False
    tls: TLSConfig | None = None
    http_timeout: float = DEFAULT_EXTENDER_TIMEOUT
    node_cache_capable: bool = False
    managed_resources: tuple[ManagedResource, ...] = ()
    ignorable: bool = False

    def url(self, verb: str) -> str:
        """The URL kube-scheduler posts to: the prefix without trailing slashes, then the verb."""
        return f"{self.url_prefix.rstrip('/')}/{verb}"


@dataclass(frozen=True, slots=True)
class Scoring:
    """A profile's score plugins: weight per modelled plugin (0: disabled) and the
    ``NodeResourcesFit`` strategy with its resource weights."""

    weights: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_SCORE_WEIGHTS))
    fit_strategy: str = LEAST_ALLOCATED
    fit_resources: tuple[tuple[str, int], ...] = DEFAULT_FIT_RESOURCES  # (name, weight)

    def weight(self, plugin: str) -> int:
        return self.weights.get(plugin, 0)


DEFAULT_SCORING: Final = Scoring()


@dataclass(frozen=True, slots=True)
class Profile:
    """A scheduling profile; pods name it in ``spec.schedulerName``."""

    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    scoring: Scoring = DEFAULT_SCORING


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """The parts of a KubeSchedulerConfiguration the local scheduler acts on."""

    profiles: tuple[Profile, ...] = (Profile(),)
    extenders: tuple[ExtenderConfig, ...] = ()
    pod_initial_backoff: float = DEFAULT_POD_INITIAL_BACKOFF
    pod_max_backoff: float = DEFAULT_POD_MAX_BACKOFF
    api_version: str = "kubescheduler.config.k8s.io/v1"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def scheduler_names(self) -> tuple[str, ...]:
        return tuple(p.scheduler_name for p in self.profiles)

    def profile(self, scheduler_name: str) -> Profile:
        """The profile of that name, else the first (a scheduler renamed to a single profile)."""
        return next((p for p in self.profiles if p.scheduler_name == scheduler_name), self.profiles[0])

    def ignored_resources(self) -> frozenset[str]:
        """Extended resources NodeResourcesFit leaves to the extenders that manage them."""
        return frozenset(
            r.name for e in self.extenders for r in e.managed_resources if r.ignored_by_scheduler
        )


def load_scheduler_config(source: str | Path) -> SchedulerConfig:
    """Parse a KubeSchedulerConfiguration from a file path or from YAML text.

    A :class:`~pathlib.Path`, or a string with no newline naming an existing file, is read from
    disk (call this before the event loop runs, or in a thread); anything else is YAML text.
    Raises :class:`ValidationError` listing every bad field.
    """
    text = _read_source(source)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError([FieldError("", f"not YAML: {exc}")], KIND) from None
    return parse_scheduler_config(raw)


def _read_source(source: str | Path) -> str:
    if isinstance(source, Path):
        return source.read_text(encoding="utf-8")
    if "\n" not in source and source.strip() and Path(source).is_file():
        return Path(source).read_text(encoding="utf-8")
    return source


def parse_scheduler_config(raw: object) -> SchedulerConfig:
    """Validate a decoded KubeSchedulerConfiguration document (see :func:`load_scheduler_config`)."""
    errors: list[FieldError] = []
    if not isinstance(raw, dict):
        raise ValidationError([FieldError("", "must be a mapping (a KubeSchedulerConfiguration)")], KIND)
    api_version = raw.get("apiVersion")
    if api_version not in API_VERSIONS:
        errors.append(FieldError("apiVersion", f"{api_version!r} is not one of {sorted(API_VERSIONS)}"))
    if raw.get("kind") != KIND:
        errors.append(FieldError("kind", f"{raw.get('kind')!r} must be {KIND!r}"))
    profiles = _profiles(raw.get("profiles"), errors)
    extenders = _extenders(raw.get("extenders"), errors)
    initial = _seconds(raw, "podInitialBackoffSeconds", DEFAULT_POD_INITIAL_BACKOFF, errors)
    maximum = _seconds(raw, "podMaxBackoffSeconds", DEFAULT_POD_MAX_BACKOFF, errors)
    if maximum < initial:
        errors.append(FieldError("podMaxBackoffSeconds", "must be at least podInitialBackoffSeconds"))
    if errors:
        raise ValidationError(errors, KIND)
    known = {
        "apiVersion",
        "kind",
        "profiles",
        "extenders",
        "podInitialBackoffSeconds",
        "podMaxBackoffSeconds",
    }
    return SchedulerConfig(
        profiles=profiles,
        extenders=extenders,
        pod_initial_backoff=initial,
        pod_max_backoff=maximum,
        api_version=str(api_version),
        extra={k: v for k, v in raw.items() if k not in known},
    )


def _seconds(raw: Mapping[str, Any], key: str, default: float, errors: list[FieldError]) -> float:
    """A positive number of seconds (fractions allowed so tests can use short backoffs)."""
    value = raw.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        errors.append(FieldError(key, f"{value!r} must be a positive number of seconds"))
        return default
    return float(value)


def _profiles(raw: object, errors: list[FieldError]) -> tuple[Profile, ...]:
    if raw is None:
        return (Profile(),)
    if not isinstance(raw, list):
        errors.append(FieldError("profiles", "must be a list"))
        return (Profile(),)
    profiles: list[Profile] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        path = f"profiles[{i}]"
        if not isinstance(item, dict):
            errors.append(FieldError(path, "must be a mapping"))
            continue
        name = item.get("schedulerName") or DEFAULT_SCHEDULER_NAME
        if not isinstance(name, str):
            errors.append(FieldError(f"{path}.schedulerName", f"{name!r} must be a string"))
            continue
        if name in seen:
            errors.append(FieldError(f"{path}.schedulerName", f"duplicate profile {name!r}"))
        seen.add(name)
        scoring = _scoring(item, path, errors)
        profiles.append(Profile(scheduler_name=name, scoring=scoring))
    return tuple(profiles) or (Profile(),)


def _scoring(profile: Mapping[str, Any], path: str, errors: list[FieldError]) -> Scoring:
    """``plugins.score`` (merged onto the defaults as kube-scheduler merges them) and
    ``pluginConfig[NodeResourcesFit].args.scoringStrategy``."""
    weights = dict(DEFAULT_SCORE_WEIGHTS)
    plugins = profile.get("plugins")
    if plugins is not None and not isinstance(plugins, dict):
        errors.append(FieldError(f"{path}.plugins", "must be a mapping"))
        plugins = None
    score = (plugins or {}).get("score")
    if score is not None and not isinstance(score, dict):
        errors.append(FieldError(f"{path}.plugins.score", "must be a mapping"))
        score = None
    score = score or {}
    for name in _plugin_names(score.get("disabled"), f"{path}.plugins.score.disabled", errors):
        if name == "*":
            weights = dict.fromkeys(weights, 0)
        elif name in weights:
            weights[name] = 0
    for i, (name, weight) in enumerate(
        _plugin_weights(score.get("enabled"), f"{path}.plugins.score.enabled", errors)
    ):
        if name in DEFAULT_SCORE_WEIGHTS:
            # frameworkImpl: an enabled score plugin without a weight weighs 1.
            weights[name] = weight or 1
        elif weight < 0:
            errors.append(FieldError(f"{path}.plugins.score.enabled[{i}].weight", "must not be negative"))
    strategy, resources = _fit_strategy(profile.get("pluginConfig"), f"{path}.pluginConfig", errors)
    return Scoring(weights=weights, fit_strategy=strategy, fit_resources=resources)


def _plugin_names(raw: object, path: str, errors: list[FieldError]) -> list[str]:
    return [name for name, _ in _plugin_weights(raw, path, errors)]


def _named_items(raw: object, path: str, errors: list[FieldError]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(path of the item, its name, the item)`` for a list of ``{name: ..., ...}`` objects;
    a list that is not one, or an item without a name, is an error and left out."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(FieldError(path, "must be a list"))
        return []
    out: list[tuple[str, str, dict[str, Any]]] = []
    for i, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            errors.append(FieldError(f"{path}[{i}].name", "must be a non-empty string"))
            continue
        assert isinstance(item, dict)
        out.append((f"{path}[{i}]", name, item))
    return out


def _plugin_weights(raw: object, path: str, errors: list[FieldError]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for at, name, item in _named_items(raw, path, errors):
        weight = item.get("weight", 0)
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            errors.append(FieldError(f"{at}.weight", f"{weight!r} must be a non-negative integer"))
            weight = 0
        out.append((name, weight))
    return out


FitResources = tuple[tuple[str, int], ...]


def _fit_strategy(raw: object, path: str, errors: list[FieldError]) -> tuple[str, FitResources]:
    """NodeResourcesFitArgs.scoringStrategy, defaulted as kube-scheduler defaults it."""
    default = (LEAST_ALLOCATED, DEFAULT_FIT_RESOURCES)
    if raw is None:
        return default
    if not isinstance(raw, list):
        errors.append(FieldError(path, "must be a list"))
        return default
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            errors.append(FieldError(f"{path}[{i}].name", "must be a plugin name"))
            continue
        if item["name"] != NODE_RESOURCES_FIT:
            continue
        args_path = f"{path}[{i}].args"
        args = item.get("args") or {}
        strategy = args.get("scoringStrategy") if isinstance(args, dict) else None
        if strategy is None:
            return default
        if not isinstance(strategy, dict):
            errors.append(FieldError(f"{args_path}.scoringStrategy", "must be a mapping"))
            return default
        kind = strategy.get("type") or LEAST_ALLOCATED
        strategy_path = f"{args_path}.scoringStrategy"
        if kind == REQUESTED_TO_CAPACITY_RATIO:
            errors.append(FieldError(f"{strategy_path}.type", f"{kind} is not modelled locally"))
            return default
        if kind not in (LEAST_ALLOCATED, MOST_ALLOCATED):
            known = [LEAST_ALLOCATED, MOST_ALLOCATED, REQUESTED_TO_CAPACITY_RATIO]
            errors.append(FieldError(f"{strategy_path}.type", f"{kind!r} must be one of {known}"))
            return default
        resources = _fit_resources(strategy.get("resources"), f"{strategy_path}.resources", errors)
        return str(kind), resources or DEFAULT_FIT_RESOURCES
    return default


def _fit_resources(raw: object, path: str, errors: list[FieldError]) -> FitResources:
    out: list[tuple[str, int]] = []
    for at, name, item in _named_items(raw, path, errors):
        weight = item.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= _MAX_RESOURCE_WEIGHT:
            errors.append(FieldError(f"{at}.weight", f"{weight!r} must be in the range [1, 100]"))
            continue
        out.append((name, weight))
    return tuple(out)


def _extenders(raw: object, errors: list[FieldError]) -> tuple[ExtenderConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors.append(FieldError("extenders", "must be a list"))
        return ()
    out = [e for i, item in enumerate(raw) if (e := _extender(item, f"extenders[{i}]", errors)) is not None]
    binders = [e for e in out if e.bind_verb]
    if len(binders) > 1:
        errors.append(FieldError("extenders", "only one extender can implement bind"))
    return tuple(out)


def _extender(item: object, path: str, errors: list[FieldError]) -> ExtenderConfig | None:
    if not isinstance(item, dict):
        errors.append(FieldError(path, "must be a mapping"))
        return None
    before = len(errors)
    for key in sorted(set(item) - _EXTENDER_FIELDS):
        errors.append(FieldError(f"{path}.{key}", "unknown field"))
    url_prefix = item.get("urlPrefix")
    if not isinstance(url_prefix, str) or not url_prefix.startswith(("http://", "https://")):
        errors.append(FieldError(f"{path}.urlPrefix", f"{url_prefix!r} must be an http(s) URL"))
    verbs = {
        key: _string(item, key, path, errors)
        for key in ("filterVerb", "prioritizeVerb", "preemptVerb", "bindVerb")
    }
    weight = item.get("weight", 0)
    if isinstance(weight, bool) or not isinstance(weight, int):
        errors.append(FieldError(f"{path}.weight", f"{weight!r} must be an integer"))
        weight = 0
    elif verbs["prioritizeVerb"] and weight <= 0:
        errors.append(FieldError(f"{path}.weight", "must be positive when prioritizeVerb is set"))
    timeout = DEFAULT_EXTENDER_TIMEOUT
    if item.get("httpTimeout") is not None:
        try:
            timeout = parse_go_duration(item["httpTimeout"], f"{path}.httpTimeout")
        except FieldError as exc:
            errors.append(exc)
        if timeout < 0:
            errors.append(FieldError(f"{path}.httpTimeout", "must not be negative"))
        timeout = timeout or DEFAULT_EXTENDER_TIMEOUT
    flags = {key: _bool(item, key, path, errors) for key in ("enableHTTPS", "nodeCacheCapable", "ignorable")}
    managed = _managed_resources(item.get("managedResources"), f"{path}.managedResources", errors)
    tls = _tls(item.get("tlsConfig"), f"{path}.tlsConfig", errors)
    if len(errors) > before:
        return None
    assert isinstance(url_prefix, str)
    return ExtenderConfig(
        url_prefix=url_prefix,
        filter_verb=verbs["filterVerb"],
        prioritize_verb=verbs["prioritizeVerb"],
        preempt_verb=verbs["preemptVerb"],
        bind_verb=verbs["bindVerb"],
        weight=weight,
        enable_https=flags["enableHTTPS"],
        tls=tls,
        http_timeout=timeout,
        node_cache_capable=flags["nodeCacheCapable"],
        managed_resources=managed,
        ignorable=flags["ignorable"],
    )


def _string(item: Mapping[str, Any], key: str, path: str, errors: list[FieldError]) -> str:
    value = item.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.append(FieldError(f"{path}.{key}", f"{value!r} must be a string"))
        return ""
    return value


def _bool(item: Mapping[str, Any], key: str, path: str, errors: list[FieldError]) -> bool:
    value = item.get(key, False)
    if not isinstance(value, bool):
        errors.append(FieldError(f"{path}.{key}", f"{value!r} must be true or false"))
        return False
    return value


def _managed_resources(raw: object, path: str, errors: list[FieldError]) -> tuple[ManagedResource, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors.append(FieldError(path, "must be a list"))
        return ()
    out: list[ManagedResource] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        item_path = f"{path}[{i}]"
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            errors.append(FieldError(f"{item_path}.name", "must be a non-empty string"))
            continue
        if name in names:
            errors.append(FieldError(f"{item_path}.name", f"duplicate managed resource {name!r}"))
        names.add(name)
        assert isinstance(item, dict)
        out.append(ManagedResource(name, _bool(item, "ignoredByScheduler", item_path, errors)))
    return tuple(out)


def _tls(raw: object, path: str, errors: list[FieldError]) -> TLSConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        errors.append(FieldError(path, "must be a mapping"))
        return None
    for key in sorted(set(raw) - _TLS_FIELDS):
        errors.append(FieldError(f"{path}.{key}", "unknown field"))
    strings: Sequence[str] = ("serverName", "certFile", "keyFile", "caFile", "certData", "keyData", "caData")
    values = {key: _string(raw, key, path, errors) for key in strings}
    return TLSConfig(
        insecure=_bool(raw, "insecure", path, errors),
        server_name=values["serverName"],
        cert_file=values["certFile"],
        key_file=values["keyFile"],
        ca_file=values["caFile"],
        cert_data=values["certData"],
        key_data=values["keyData"],
        ca_data=values["caData"],
    )
