"""KubeSchedulerConfiguration, the file a real kube-scheduler is started with.

The local scheduler reads the same YAML as ``kube-scheduler --config`` so that the manifests
shipped for a real cluster (profiles, the jitnode extender entry) are exercised as-is in tests.
Only what changes scheduling decisions is modelled: profile names, each profile's score
plugin weights (``plugins.multiPoint`` and ``plugins.score``, merged as kube-scheduler merges
them), whether PodTopologySpread filters (``plugins.multiPoint``/``plugins.filter``), the
``NodeResourcesFit`` scoring strategy and ``PodTopologySpread`` default constraints
(``pluginConfig``), extenders and the pod backoff bounds; other top-level fields
(leaderElection, clientConnection, ...) are accepted and ignored, as they only concern the
process around the scheduler. Score plugins the local scheduler does not model (ImageLocality,
InterPodAffinity, VolumeBinding) may be named and are ignored; a scoring strategy it does not
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
from shared.labels import HOSTNAME, ZONE
from shared.topologyspread import SpreadConstraint, parse_constraint

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
POD_TOPOLOGY_SPREAD: Final = "PodTopologySpread"
DEFAULT_SCORE_WEIGHTS: Final = {
    TAINT_TOLERATION: 3,
    NODE_AFFINITY: 2,
    NODE_RESOURCES_FIT: 1,
    BALANCED_ALLOCATION: 1,
    POD_TOPOLOGY_SPREAD: 2,
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

SYSTEM_DEFAULTING: Final = "System"
LIST_DEFAULTING: Final = "List"
# kube-scheduler's systemDefaultConstraints (podtopologyspread/plugin.go).
SYSTEM_DEFAULT_CONSTRAINTS: Final = (
    SpreadConstraint(HOSTNAME, 3, hard=False),
    SpreadConstraint(ZONE, 5, hard=False),
)


@dataclass(frozen=True, slots=True)
class SpreadArgs:
    """``PodTopologySpreadArgs``: the constraints of pods that have none of their own (their
    selector is derived per pod); ``system_defaulted`` also relaxes scoring (topologyspread)."""

    default_constraints: tuple[SpreadConstraint, ...] = SYSTEM_DEFAULT_CONSTRAINTS
    system_defaulted: bool = True


SYSTEM_SPREAD_ARGS: Final = SpreadArgs()


@dataclass(frozen=True, slots=True)
class Profile:
    """A scheduling profile; pods name it in ``spec.schedulerName``.

    ``spread`` is PodTopologySpread's args (default constraints); ``spread_filter`` whether its
    Filter runs (its score weight is in ``scoring``).
    """

    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    scoring: Scoring = DEFAULT_SCORING
    spread: SpreadArgs = SYSTEM_SPREAD_ARGS
    spread_filter: bool = True


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
        weights, spread_filter = _plugins(item, path, errors)
        strategy, resources = _fit_strategy(item.get("pluginConfig"), f"{path}.pluginConfig", errors)
        scoring = Scoring(weights=weights, fit_strategy=strategy, fit_resources=resources)
        at, args = _plugin_args(item.get("pluginConfig"), POD_TOPOLOGY_SPREAD, f"{path}.pluginConfig")
        spread = parse_spread_args(args, at, errors)
        profiles.append(Profile(name, scoring, spread, spread_filter))
    return tuple(profiles) or (Profile(),)


def _extension_point(
    plugins: Mapping[str, Any], point: str, path: str, errors: list[FieldError]
) -> tuple[dict[str, int], set[str]]:
    """``plugins.<point>``: the plugins it enables (with their weights) and the names it disables."""
    section = plugins.get(point)
    if section is None:
        return {}, set()
    if not isinstance(section, dict):
        errors.append(FieldError(f"{path}.plugins.{point}", "must be a mapping"))
        return {}, set()
    disabled = set(_plugin_names(section.get("disabled"), f"{path}.plugins.{point}.disabled", errors))
    enabled = dict(_plugin_weights(section.get("enabled"), f"{path}.plugins.{point}.enabled", errors))
    return enabled, disabled


def _plugins(profile: Mapping[str, Any], path: str, errors: list[FieldError]) -> tuple[dict[str, int], bool]:
    """Score weights of the modelled plugins, and whether PodTopologySpread filters.

    As kube-scheduler's ``expandMultiPointPlugins``: the default ``multiPoint`` set (less what
    ``multiPoint.disabled`` names, plus ``multiPoint.enabled``) applies at each extension point
    unless that point disables it (or ``*``); a plugin the point enables itself takes that
    entry instead. A score weight of 0 weighs 1, as frameworkImpl sets it.
    """
    plugins = profile.get("plugins")
    if plugins is not None and not isinstance(plugins, dict):
        errors.append(FieldError(f"{path}.plugins", "must be a mapping"))
        plugins = None
    plugins = plugins or {}
    multi = dict(DEFAULT_SCORE_WEIGHTS)
    multi_enabled, multi_disabled = _extension_point(plugins, "multiPoint", path, errors)
    multi = {} if "*" in multi_disabled else {k: v for k, v in multi.items() if k not in multi_disabled}
    multi.update(multi_enabled)

    def enabled(point: str) -> dict[str, int]:
        own, disabled = _extension_point(plugins, point, path, errors)
        inherited = {} if "*" in disabled else {k: v for k, v in multi.items() if k not in disabled}
        return {**inherited, **own}

    score = enabled("score")
    weights = {name: (score[name] or 1) if name in score else 0 for name in DEFAULT_SCORE_WEIGHTS}
    return weights, POD_TOPOLOGY_SPREAD in enabled("filter")


def _plugin_args(raw: object, name: str, path: str) -> tuple[str, object]:
    """``(path, args)`` of the plugin's ``pluginConfig`` entry; args None when there is none
    (the list itself is checked by :func:`_fit_strategy`)."""
    if isinstance(raw, list):
        for i, item in enumerate(raw):
            if isinstance(item, dict) and item.get("name") == name:
                return f"{path}[{i}].args", item.get("args")
    return path, None


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


def parse_spread_args(raw: object, path: str, errors: list[FieldError]) -> SpreadArgs:
    """``PodTopologySpreadArgs``, defaulted (``System``) and validated as kube-scheduler does.

    A default constraint's ``matchLabelKeys`` and ``minDomains`` of a ScheduleAnyway one are
    dropped: the selector is replaced per pod and only DoNotSchedule reads minDomains.
    """
    if raw is None:
        return SYSTEM_SPREAD_ARGS
    if not isinstance(raw, Mapping):
        errors.append(FieldError(path, "must be a mapping"))
        return SYSTEM_SPREAD_ARGS
    defaulting = raw.get("defaultingType") or SYSTEM_DEFAULTING
    items = raw.get("defaultConstraints") or []
    if defaulting not in (SYSTEM_DEFAULTING, LIST_DEFAULTING):
        choices = [SYSTEM_DEFAULTING, LIST_DEFAULTING]
        errors.append(FieldError(f"{path}.defaultingType", f"{defaulting!r} must be one of {choices}"))
        return SYSTEM_SPREAD_ARGS
    if not isinstance(items, list):
        errors.append(FieldError(f"{path}.defaultConstraints", "must be a list"))
        return SYSTEM_SPREAD_ARGS
    if defaulting == SYSTEM_DEFAULTING:
        if items:
            errors.append(
                FieldError(f"{path}.defaultingType", "must be List when .defaultConstraints are set")
            )
        return SYSTEM_SPREAD_ARGS
    constraints: list[SpreadConstraint] = []
    seen: set[tuple[str, bool]] = set()
    for i, item in enumerate(items):
        at = f"{path}.defaultConstraints[{i}]"
        if isinstance(item, Mapping) and item.get("labelSelector") is not None:
            errors.append(FieldError(f"{at}.labelSelector", "must not be set: it is deduced for each pod"))
            continue
        if isinstance(item, Mapping):
            item = {k: v for k, v in item.items() if k != "matchLabelKeys"}
            if item.get("whenUnsatisfiable") != "DoNotSchedule":
                item.pop("minDomains", None)
        try:
            constraint = parse_constraint(item, at, {})
        except FieldError as exc:
            errors.append(exc)
            continue
        if (constraint.topology_key, constraint.hard) in seen:
            errors.append(FieldError(at, "duplicate topologyKey and whenUnsatisfiable"))
            continue
        seen.add((constraint.topology_key, constraint.hard))
        constraints.append(constraint)
    return SpreadArgs(default_constraints=tuple(constraints), system_defaulted=False)


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
