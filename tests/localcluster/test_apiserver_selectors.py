"""Label and field selector parsing and matching (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localcluster.apiserver.registry import POD_FIELDS
from localcluster.apiserver.selectors import (
    SelectorError,
    fields_match,
    from_label_selector,
    labels_match,
    parse_field_selector,
    parse_label_selector,
    selector_to_string,
)

LABELS = {"app": "web", "tier": "front", "n": "5"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("missing!=x", True),
        ("app in (web, api)", True),
        ("app notin (web)", False),
        ("tier", True),
        ("!tier", False),
        ("!missing", True),
        ("app=web,tier=back", False),
        ("n>4,n<6", True),
        ("n>5", False),
    ],
)
def test_label_selector_semantics(text: str, expected: bool) -> None:
    assert labels_match(parse_label_selector(text), LABELS) is expected


@pytest.mark.parametrize("text", ["app in (web", "=x", "app=web,", "a b", "app in web", "bad key!=x", "n>x"])
def test_invalid_label_selectors_raise(text: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(text)


label_names = st.from_regex(r"\A[a-z][a-z0-9]{0,5}\Z")


@given(
    st.dictionaries(label_names, label_names, max_size=4),
    st.dictionaries(label_names, label_names, max_size=4),
)
def test_structured_selector_round_trips_through_text(match: dict[str, str], labels: dict[str, str]) -> None:
    structured = from_label_selector({"matchLabels": match})
    assert structured is not None
    reparsed = parse_label_selector(selector_to_string(structured))
    assert labels_match(reparsed, labels) == labels_match(structured, labels)
    assert labels_match(structured, {**labels, **match})


def test_null_selector_matches_nothing_and_expressions_work() -> None:
    assert from_label_selector(None) is None
    sel = from_label_selector(
        {
            "matchExpressions": [
                {"key": "app", "operator": "In", "values": ["web"]},
                {"key": "gone", "operator": "DoesNotExist"},
            ]
        }
    )
    assert sel is not None
    assert labels_match(sel, LABELS)
    with pytest.raises(SelectorError):
        from_label_selector({"matchExpressions": [{"key": "a", "operator": "Near"}]})


def test_field_selectors() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"hostNetwork": True},
        "status": {"phase": "Running"},
    }
    assert fields_match(parse_field_selector("spec.nodeName=", POD_FIELDS), pod)
    assert fields_match(parse_field_selector("status.phase!=Failed,metadata.name==p", POD_FIELDS), pod)
    assert fields_match(parse_field_selector("spec.hostNetwork=true", POD_FIELDS), pod)
    assert not fields_match(parse_field_selector("status.phase=Pending", POD_FIELDS), pod)
    with pytest.raises(SelectorError):
        parse_field_selector("spec.other=1", POD_FIELDS)
    with pytest.raises(SelectorError):
        parse_field_selector("status.phase", POD_FIELDS)
