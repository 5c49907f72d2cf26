"""moto's answers to the static EC2 catalogue calls, rendered once per request and served again.

Every launcher that the tests and the demo start lists the whole catalogue from moto: about
fourteen ``DescribeInstanceTypes`` pages and seven ``DescribeSpotPriceHistory`` pages, whose XML
moto renders anew on every call. That is about 3 s of CPU per launcher start, in the test process
(moto serves from a thread there), on every one of the suite's stack starts. The catalogue, the
offerings and moto's spot prices are static data, the same after every reset, so the rendered
answer is kept per request (action, account, region, parameters) and served again.

It wraps ``EC2Response.call_action`` when a :class:`~localcluster.ec2.MotoEC2` starts (and
installs :mod:`localcluster.motohibernation`, moto's other correction, at the same moment); fault
injection (:mod:`localcluster.chaos.ec2`) wraps it later, so injected faults still fire on these
calls. Nothing else is cached: every call that reads or changes state goes to moto.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any, Final

STATIC_ACTIONS: Final = frozenset(
    {"DescribeInstanceTypes", "DescribeInstanceTypeOfferings", "DescribeSpotPriceHistory"}
)
# Parameters moto ignores for these actions that change on every call (the launcher asks for
# spot prices from "now"; moto's history is one fixed entry per type and zone).
_IGNORED: Final = frozenset({"Action", "Version", "StartTime", "EndTime"})

_lock = threading.Lock()
_answers: dict[tuple[Any, ...], Any] = {}
_installed = False


def install() -> None:
    """Wrap moto's ``EC2Response.call_action`` (once per process; later calls do nothing)."""
    global _installed
    from moto.ec2.responses import EC2Response

    from localcluster import motohibernation

    motohibernation.install()
    with _lock:
        if _installed:
            return
        _installed = True
        call_action: Callable[[Any], Any] = EC2Response.call_action

        def remembering_call_action(handler: Any) -> Any:
            key = _key(handler)
            if key is None:
                return call_action(handler)
            with _lock:
                answer = _answers.get(key)
            if answer is None:
                answer = call_action(handler)
                if _succeeded(answer):
                    with _lock:
                        _answers[key] = answer
            return copy.deepcopy(answer)  # moto may add to the headers it hands back

        setattr(EC2Response, "call_action", remembering_call_action)  # noqa: B010 (a method, patched)


def _key(handler: Any) -> tuple[Any, ...] | None:
    action = handler._get_action()
    if action not in STATIC_ACTIONS:
        return None
    params = tuple(
        sorted((name, tuple(values)) for name, values in handler.querystring.items() if name not in _IGNORED)
    )
    return (action, handler.current_account, handler.region, params)


def _succeeded(answer: Any) -> bool:
    status = answer[0] if isinstance(answer, tuple) and answer else None
    return status == 200


def remembered() -> int:
    """How many answers are kept (for tests)."""
    with _lock:
        return len(_answers)
