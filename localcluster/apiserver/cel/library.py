"""Which CEL functions a Kubernetes API server declares, by version.

Mirrors the ``IntroducedVersion``/``RemovedVersion`` table of the base environment in
k8s.io/apiserver/pkg/cel/environment/base.go. A 1.N server compiles new CRD rules in its N-1
compatibility environment (so that a rollback to N-1 can still run them), which is why the
quantity library, introduced in the 1.28 environment, is first usable on a 1.29 server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Library:
    name: str
    introduced: int
    removed: int | None
    functions: frozenset[str]


def _lib(name: str, introduced: int, functions: str, removed: int | None = None) -> Library:
    return Library(name, introduced, removed, frozenset(functions.split()))


# cel-go's timestamp and duration accessors: standard, and all answering an int.
TIMESTAMP_ACCESSORS: Final = (
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getFullYear",
    "getHours",
    "getMilliseconds",
    "getMinutes",
    "getMonth",
    "getSeconds",
)

# cel-go's comparison and logical operators: standard, and all answering a bool.
LOGICAL_OPERATORS: Final = (
    "_==_",
    "_!=_",
    "_<_",
    "_<=_",
    "_>_",
    "_>=_",
    "_&&_",
    "_||_",
    "!_",
)

STANDARD: Final = frozenset(
    [
        *LOGICAL_OPERATORS,
        "-_",
        "_+_",
        "_-_",
        "_*_",
        "_/_",
        "_%_",
        "_?_:_",
        "_[_]",
        "@in",
        "@not_strictly_false",
        "size",
        "int",
        "uint",
        "double",
        "string",
        "bytes",
        "bool",
        "duration",
        "timestamp",
        "type",
        "dyn",
        "matches",
        "contains",
        "startsWith",
        "endsWith",
        *TIMESTAMP_ACCESSORS,
    ]
)
"""cel-go's standard declarations, present in every environment."""

LIBRARIES: Final = (
    _lib("urls", 0, "url isURL getScheme getHost getHostname getPort getEscapedPath getQuery"),
    _lib("regex", 0, "find findAll"),
    _lib("lists", 0, "isSorted sum min max indexOf lastIndexOf", removed=37),
    _lib(
        "strings.v0",
        0,
        "charAt indexOf lastIndexOf lowerAscii replace split substring trim upperAscii join",
        29,
    ),
    _lib(
        "authz",
        27,
        "path group serviceAccount resource subresource namespace name check allowed reason errored error",
    ),
    _lib(
        "quantity",
        28,
        "quantity isQuantity sign isInteger asInteger asApproximateFloat add sub isLessThan "
        "isGreaterThan compareTo",
    ),
    _lib("optional", 28, "optional.of optional.none optional.ofNonZeroValue hasValue value orValue or"),
    _lib(
        "strings.v2",
        29,
        "charAt indexOf lastIndexOf lowerAscii replace split substring trim upperAscii join "
        "format strings.quote",
    ),
    _lib("sets", 29, "sets.contains sets.equivalent sets.intersects"),
    _lib(
        "ip",
        30,
        "ip isIP ip.isCanonical family isUnspecified isLoopback isLinkLocalMulticast "
        "isLinkLocalUnicast isGlobalUnicast",
    ),
    _lib("cidr", 30, "cidr isCIDR containsIP containsCIDR masked prefixLength"),
    _lib(
        "format",
        31,
        "format.named validate format.dns1123Label format.dns1123Subdomain format.dns1035Label "
        "format.qualifiedName format.dns1123LabelPrefix format.dns1123SubdomainPrefix "
        "format.dns1035LabelPrefix format.labelValue format.uri format.uuid format.byte "
        "format.date format.datetime",
    ),
    _lib("authz.selectors", 31, "fieldSelector labelSelector"),
    _lib("two-var-comprehensions", 32, "transformList transformMap transformMapEntry existsOne"),
    _lib("semver", 33, "semver isSemver major minor patch isGreaterThan isLessThan compareTo"),
    _lib("ext.lists", 34, "lists.range slice flatten distinct reverse sort sortBy first last"),
    _lib("lists.v1", 37, "isSorted sum min max indexOf lastIndexOf includes"),
)


def environment_minor(server_minor: int) -> int:
    """The compatibility environment a 1.``server_minor`` server compiles new rules in."""
    return server_minor - 1


def functions_at(env_minor: int) -> frozenset[str]:
    """Every function name declared in the 1.``env_minor`` environment."""
    names = set(STANDARD)
    for lib in LIBRARIES:
        if lib.introduced <= env_minor and (lib.removed is None or env_minor < lib.removed):
            names |= lib.functions
    return frozenset(names)
