"""Syntax of Kubernetes label keys and values (``apimachinery/pkg/util/validation``).

Requirements, taints and tolerations all carry label-shaped keys; checking them where they are
parsed turns a typo in a manifest into a field error instead of a requirement nothing matches.
"""

from __future__ import annotations

import re
from typing import Final

_NAME: Final = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS_SUBDOMAIN: Final = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")
_NAME_MAX: Final = 63
_PREFIX_MAX: Final = 253


def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a qualified name (``[prefix/]name``), or None when it is one."""
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            return f"{key!r} has an empty prefix"
        if "/" in prefix:
            return f"{key!r} has more than one '/'"
        if len(prefix) > _PREFIX_MAX or _DNS_SUBDOMAIN.fullmatch(prefix) is None:
            return f"{key!r} has a prefix that is not a DNS subdomain"
    if not name:
        return f"{key!r} has an empty name part"
    if len(name) > _NAME_MAX:
        return f"{key!r} has a name part longer than {_NAME_MAX} characters"
    if _NAME.fullmatch(name) is None:
        return (
            f"{key!r} is not a qualified name (alphanumerics, '-', '_' or '.', "
            "starting and ending with an alphanumeric)"
        )
    return None


def label_value_problem(value: str) -> str | None:
    """Why ``value`` is not a valid label value (empty is valid), or None when it is one."""
    if not value:
        return None
    if len(value) > _NAME_MAX:
        return f"{value!r} is longer than {_NAME_MAX} characters"
    if _NAME.fullmatch(value) is None:
        return (
            f"{value!r} is not a valid label value (alphanumerics, '-', '_' or '.', "
            "starting and ending with an alphanumeric)"
        )
    return None
