"""Hypothesis settings and generators shared by the HTTP fuzz tests.

CI runs a modest, derandomized number of examples with no example database, so a run is the
same on every machine; ``JITNODE_FUZZ_EXAMPLES`` raises the count for deep runs (``make fuzz``).
Generators: random JSON values, structural mutations of a decoded body at any depth (drop,
rename, re-case or retype a key, odd quantities and numbers, unicode, deep nesting), then
byte-level damage (truncation, non-UTF-8 bytes, raw non-JSON number tokens, empty bodies).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Final

import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.conftest import KUBE_SCHEDULER_FIXTURES

EXAMPLES: Final = int(os.environ.get("JITNODE_FUZZ_EXAMPLES", "100"))

FUZZ: Final = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

# Captured kube-scheduler request bodies, read once at import.
SCHEDULER_BODIES: Final = {
    path.name: orjson.loads(path.read_bytes())
    for path in sorted(Path(KUBE_SCHEDULER_FIXTURES).glob("*.json"))
}

# A placeholder string replaced, after encoding, by a token that is not valid JSON or not a
# number orjson can hold (NaN, Infinity, 1e999, 2**70...).
_RAW: Final = "\x00raw\x00"
RAW_TOKENS: Final = (b"NaN", b"-Infinity", b"Infinity", b"1e999", b"-1e999", b"1" + b"0" * 25, b"-0", b"0x10")


def nested(depth: int) -> str:
    """A placeholder that :func:`encode` replaces by ``depth`` nested objects and arrays."""
    return f"\x00deep{depth}\x00"


def _deep(depth: int) -> bytes:
    opens = [b'{"a":' if i % 2 == 0 else b"[" for i in range(depth)]
    closes = [b"}" if i % 2 == 0 else b"]" for i in reversed(range(depth))]
    return b"".join(opens) + b"1" + b"".join(closes)


QUANTITIES: Final = (
    "",
    "-1",
    "-100m",
    "0",
    "1.5",
    "1e3",
    "1e400",
    "1E18",
    "9" * 40,
    "9" * 40 + "Ei",
    "0.0000000001m",
    "NaN",
    "Inf",
    "-Inf",
    "+inf",
    "1.5.5",
    "1Gi ",
    " 1",
    "1gi",
    "1 Gi",
    "１",  # a fullwidth digit  # noqa: RUF001
    "٣",  # an Arabic-Indic digit
    "1Ki1",
    "0x10",
    "1_000",
    "\u00b2",
)
NUMBERS: Final = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 2**63, -(2**63) - 1, 2**64, 1e308, -1e308, 5e-324, 0.5]),
)
UNICODE_TEXT: Final = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]),  # JSON text cannot carry lone surrogates
    max_size=20,
)
SCALARS: Final = st.one_of(
    st.none(),
    st.booleans(),
    NUMBERS,
    UNICODE_TEXT,
    st.sampled_from(QUANTITIES),
    st.just(_RAW),
    st.sampled_from([100, 900, 1100]).map(lambda depth: nested(depth)),
)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value (with the raw-token placeholder among its scalars)."""
    return st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(UNICODE_TEXT, inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def _recase(key: str, how: int) -> str:
    return (key.lower(), key.upper(), key.swapcase(), key.title())[how % 4]


@st.composite
def mutated(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with one change at a node reached by a random walk from the root."""
    if isinstance(value, dict) and value and draw(st.integers(0, 3)):
        key = draw(st.sampled_from(sorted(value)))
        out = dict(value)
        out[key] = draw(mutated(value[key]))
        return out
    if isinstance(value, list) and value and draw(st.integers(0, 3)):
        index = draw(st.integers(0, len(value) - 1))
        out_list = list(value)
        out_list[index] = draw(mutated(value[index]))
        return out_list
    # Change this node.
    if isinstance(value, dict) and value:
        key = draw(st.sampled_from(sorted(value)))
        out = dict(value)
        how = draw(st.integers(0, 5))
        if how == 0:
            del out[key]
        elif how == 1:
            out[draw(UNICODE_TEXT)] = out.pop(key)
        elif how == 2:
            out[_recase(key, draw(st.integers(0, 3)))] = out.pop(key)
        elif how == 3:
            out[draw(UNICODE_TEXT)] = draw(json_values())
        elif how == 4:
            out[key] = nested(draw(st.sampled_from([2, 100, 300, 900, 1023, 1100])))
        else:
            out[key] = draw(json_values())
        return out
    if isinstance(value, list) and value:
        how = draw(st.integers(0, 3))
        out_list = list(value)
        index = draw(st.integers(0, len(value) - 1))
        if how == 0:
            del out_list[index]
        elif how == 1:
            out_list.extend([out_list[index]] * draw(st.integers(1, 50)))
        elif how == 2:
            out_list.insert(index, draw(json_values()))
        else:
            out_list[index] = draw(json_values())
        return out_list
    return draw(st.one_of(SCALARS, json_values()))


def encode(value: Any) -> bytes:
    """JSON bytes of ``value``, each raw-token placeholder replaced by a non-JSON number."""
    # The standard library's encoder: orjson refuses integers past 64 bits, which are fuzz input.
    data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    placeholder = orjson.dumps(_RAW)
    tokens = iter(RAW_TOKENS * (data.count(placeholder) // len(RAW_TOKENS) + 1))
    data = re.sub(re.escape(placeholder), lambda _: next(tokens), data)
    return re.sub(rb'"\\u0000deep(\d+)\\u0000"', lambda m: _deep(int(m.group(1))), data)


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` as is, or truncated, with non-UTF-8 bytes spliced in, or replaced outright."""
    how = draw(st.integers(0, 9))
    if how <= 4 or not data:
        return data
    at = draw(st.integers(0, len(data)))
    if how == 5:
        return data[:at]
    if how == 6:
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xe2\x82", b"\xfe\xff"]))
        return data[:at] + bad + data[at:]
    if how == 7:
        return b""
    if how == 8:
        return draw(st.binary(max_size=64))
    return data + draw(st.sampled_from([b" garbage", b"}", b",", b"\n{}"]))


def bodies_from(base: Any) -> st.SearchStrategy[bytes]:
    """Mutations of ``base`` (one to three changes), encoded, then possibly damaged."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        value = base
        for _ in range(draw(st.integers(1, 3))):
            value = draw(mutated(value))
        return draw(damaged(encode(value)))

    return build()


def any_json_body() -> st.SearchStrategy[bytes]:
    return st.builds(encode, json_values(max_leaves=30)).flatmap(damaged)


CONTENT_TYPES: Final = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        "application/vnd.kubernetes.protobuf",
        "application/json; charset=latin-1",
        "",
    ]
)
