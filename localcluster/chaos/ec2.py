"""EC2 faults on moto's side, armed at run time while :class:`EC2Faults` is installed.

moto serves EC2 from a thread of this process (``localcluster.ec2.MotoEC2``), so faults are put
where AWS would produce them, in its request handler and its backend, and jitnode meets them
through its real aioboto3 client: botocore's retries, timeouts and error parsing included.

- :meth:`EC2Faults.throttle`, :meth:`EC2Faults.server_errors`: the next calls of some actions
  answered ``RequestLimitExceeded`` (HTTP 503), ``InternalError`` (500) or ``Unavailable`` (503),
  as EC2's error XML.
- :meth:`EC2Faults.slow`: the action is carried out, but its answer held back (longer than the
  client's read timeout, say): the client retries a request that already took effect.
- :meth:`EC2Faults.insufficient_capacity`, :meth:`EC2Faults.partial_fleet_errors`: CreateFleet
  (instant) skips refused (type, zone) overrides and lists them in ``Errors`` with
  ``InsufficientInstanceCapacity``; it launches from the rest, or launches nothing.
- :meth:`EC2Faults.never_running`, :meth:`EC2Faults.dies_after_launch`: an instance CreateFleet
  launched stays ``pending`` (so no kubelet ever joins it), or goes ``shutting-down`` then
  ``terminated`` moments after launch (the local kubelets read the state EC2 reports).

While installed, CreateFleet also honours ``ClientToken`` as EC2 does (moto ignores it): the
same token with the same parameters returns the first answer instead of launching again, with
other parameters ``IdempotentParameterMismatch``. Without that, a retry after a lost answer
would launch twice where EC2 never does.

Every fault is bounded by a count; :attr:`EC2Faults.fired` counts what was injected. Handlers
run on moto's threads, so arming and firing are serialized by a lock.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

CREATE_FLEET: Final = "CreateFleet"
ICE: Final = "InsufficientInstanceCapacity"
# (code, HTTP status, message) as EC2 answers them.
THROTTLED: Final = ("RequestLimitExceeded", 503, "Request limit exceeded.")
SERVER_ERRORS: Final = {
    500: ("InternalError", "An internal error has occurred."),
    503: ("Unavailable", "The server is overloaded and can't handle the request."),
}
# How long a dying instance stays shutting-down before it is terminated.
SHUTTING_DOWN_SECONDS: Final = 1.0
# The state reason (message, code) EC2 gives an instance lost to a host failure.
HOST_FAILURE: Final = ("Server.InternalError: Internal error on launch", "Server.InternalError")

Response = tuple[int, dict[str, str], Any]


@dataclass
class _Failure:
    actions: frozenset[str]
    remaining: int
    code: str
    status: int
    message: str
    name: str


@dataclass
class _Slow:
    actions: frozenset[str]
    remaining: int
    seconds: float


@dataclass
class _Shortage:
    """Overrides refused: those matching types and zones, or the first ``skip`` of each fleet."""

    remaining: int
    types: frozenset[str]
    zones: frozenset[str]
    skip: int
    name: str

    def refuses(self, index: int, instance_type: str, zone: str) -> bool:
        if self.skip:
            return index < self.skip
        return (not self.types or instance_type in self.types) and (not self.zones or zone in self.zones)


@dataclass
class _Fate:
    remaining: int
    dies_after: float | None  # None: never becomes running


class EC2Faults:
    """Fault injection into the in-process moto EC2 (see the module docstring).

    ``with EC2Faults() as faults: faults.throttle(count=3)``; leaving the block restores moto
    and cancels deaths still scheduled. Process-wide: moto's handler class is patched, so every
    moto server of this process (tests run one) answers with the faults armed.
    """

    def __init__(self) -> None:
        self.fired: Counter[str] = Counter()
        self.died: list[str] = []  # instances killed by dies_after_launch, in order
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._slow: list[_Slow] = []
        self._shortages: list[_Shortage] = []
        self._fates: list[_Fate] = []
        self._tokens: dict[str, tuple[str, Response]] = {}
        self._timers: list[threading.Timer] = []
        self._restore: list[Callable[[], None]] = []

    # Installing -----------------------------------------------------------------------------

    def install(self) -> EC2Faults:
        from moto.ec2.responses import EC2Response

        faults = self
        call_action = EC2Response.call_action
        create_fleet = EC2Response.create_fleet

        def faulty_call_action(handler: Any) -> Response:
            return faults._call_action(handler, lambda: call_action(handler))

        def faulty_create_fleet(handler: Any) -> Any:
            return faults._create_fleet(handler, lambda: create_fleet(handler))

        self._patch(EC2Response, "call_action", faulty_call_action)
        self._patch(EC2Response, "create_fleet", faulty_create_fleet)
        return self

    def uninstall(self) -> None:
        with self._lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        while self._restore:
            self._restore.pop()()

    def _patch(self, owner: type, name: str, replacement: Callable[..., Any]) -> None:
        own = name in owner.__dict__
        previous = owner.__dict__.get(name)
        setattr(owner, name, replacement)

        def restore() -> None:
            if own:
                setattr(owner, name, previous)
            else:
                delattr(owner, name)

        self._restore.append(restore)

    def __enter__(self) -> EC2Faults:
        return self.install()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.uninstall()

    # Arming ---------------------------------------------------------------------------------

    def throttle(self, actions: Collection[str] = (CREATE_FLEET,), count: int = 1) -> None:
        """Answer the next ``count`` calls of ``actions`` with ``RequestLimitExceeded``."""
        code, status, message = THROTTLED
        self._arm_failure(_Failure(frozenset(actions), count, code, status, message, "throttled"))

    def server_errors(
        self, actions: Collection[str] = (CREATE_FLEET,), count: int = 1, status: int = 500
    ) -> None:
        """Answer the next ``count`` calls of ``actions`` with a 500 or 503, before doing anything."""
        code, message = SERVER_ERRORS[status]
        self._arm_failure(
            _Failure(frozenset(actions), count, code, status, message, f"server_error_{status}")
        )

    def slow(self, seconds: float, actions: Collection[str] = (CREATE_FLEET,), count: int = 1) -> None:
        """Carry out the next ``count`` calls of ``actions``, then hold each answer ``seconds``."""
        with self._lock:
            self._slow.append(_Slow(frozenset(actions), count, seconds))

    def insufficient_capacity(
        self, types: Collection[str] = (), zones: Collection[str] = (), count: int = 1
    ) -> None:
        """In the next ``count`` CreateFleets, refuse the offerings of ``types`` in ``zones``
        (empty: every type, or every zone). Armed shortages apply together, each spending one."""
        with self._lock:
            self._shortages.append(
                _Shortage(count, frozenset(types), frozenset(zones), 0, "insufficient_capacity")
            )

    def partial_fleet_errors(self, count: int = 1, skip: int = 1) -> None:
        """The next ``count`` CreateFleets skip their first ``skip`` overrides (capacity errors
        in ``Errors``) and launch from the next one."""
        with self._lock:
            self._shortages.append(_Shortage(count, frozenset(), frozenset(), skip, "partial_fleet_errors"))

    def never_running(self, count: int = 1) -> None:
        """The next ``count`` instances CreateFleet launches stay ``pending``."""
        with self._lock:
            self._fates.append(_Fate(count, None))

    def dies_after_launch(self, count: int = 1, after: float = 0.5) -> None:
        """The next ``count`` instances CreateFleet launches die ``after`` seconds later."""
        with self._lock:
            self._fates.append(_Fate(count, after))

    def clear(self) -> None:
        """Disarm everything not yet fired (scheduled deaths still happen; ``fired`` is kept)."""
        with self._lock:
            self._failures, self._slow, self._shortages, self._fates = [], [], [], []

    @property
    def pending(self) -> int:
        """How many injections are armed and not yet fired."""
        with self._lock:
            rules: list[Any] = [*self._failures, *self._slow, *self._shortages, *self._fates]
            return sum(r.remaining for r in rules)

    def _arm_failure(self, failure: _Failure) -> None:
        with self._lock:
            self._failures.append(failure)

    # moto's side (worker threads) -----------------------------------------------------------

    def _call_action(self, handler: Any, call: Callable[[], Response]) -> Response:
        action = handler._get_action()
        with self._lock:
            failure = _take(self._failures, lambda f: action in f.actions)
            slow = _take(self._slow, lambda s: action in s.actions)
            if failure is not None:
                self.fired[failure.name] += 1
            if slow is not None:
                self.fired["slow"] += 1
        if failure is not None:
            return _error(handler, failure.code, failure.message, failure.status)
        response = self._idempotent(handler, call) if action == CREATE_FLEET else call()
        if slow is not None:
            time.sleep(slow.seconds)
        return response

    def _idempotent(self, handler: Any, call: Callable[[], Response]) -> Response:
        token = handler.params.get("ClientToken")
        if not token:
            return call()
        fingerprint = json.dumps(handler.params, sort_keys=True, default=str)
        with self._lock:
            known = self._tokens.get(token)
        if known is not None:
            if known[0] != fingerprint:
                self.fired["idempotent_mismatch"] += 1
                message = f"Client token {token} was used before with different parameters."
                return _error(handler, "IdempotentParameterMismatch", message, 400)
            self.fired["idempotent_replay"] += 1
            return known[1]
        response = call()
        if response[0] == 200:
            with self._lock:
                self._tokens[token] = (fingerprint, response)
        return response

    def _create_fleet(self, handler: Any, call: Callable[[], Any]) -> Any:
        with self._lock:
            shortages = list(self._shortages)
            for shortage in shortages:
                shortage.remaining -= 1
                self.fired[shortage.name] += 1
            self._shortages = [s for s in shortages if s.remaining > 0]
        errors = self._refuse(handler, shortages) if shortages else []
        if errors and not _overrides_left(handler.params):
            from moto.core.responses import ActionResult

            return ActionResult({"FleetId": f"fleet-{uuid.uuid4()}", "Errors": errors, "Instances": []})
        result = call()
        body = result.result
        if errors and isinstance(body, dict):
            body["Errors"] = errors
        for launched in body.get("Instances", []) if isinstance(body, dict) else []:
            for instance_id in launched.get("InstanceIds") or []:
                self._decide_fate(handler.ec2_backend, instance_id)
        return result

    def _refuse(self, handler: Any, shortages: list[_Shortage]) -> list[dict[str, Any]]:
        """Drop overrides any of ``shortages`` refuses; the ``Errors`` entries EC2 would report."""
        errors: list[dict[str, Any]] = []
        lifecycle = (handler.params.get("TargetCapacitySpecification") or {}).get(
            "DefaultTargetCapacityType", "on-demand"
        )
        for config in handler.params.get("LaunchTemplateConfigs") or []:
            kept = []
            for index, override in enumerate(config.get("Overrides") or []):
                instance_type = str(override.get("InstanceType", ""))
                zone = str(override.get("AvailabilityZone") or _zone_of(handler, override.get("SubnetId")))
                if not any(s.refuses(index, instance_type, zone) for s in shortages):
                    kept.append(override)
                    continue
                errors.append(
                    {
                        "LaunchTemplateAndOverrides": {
                            "LaunchTemplateSpecification": config.get("LaunchTemplateSpecification", {}),
                            "Overrides": override,
                        },
                        "Lifecycle": lifecycle,
                        "ErrorCode": ICE,
                        "ErrorMessage": f"We currently do not have sufficient {instance_type} capacity "
                        f"in the Availability Zone you requested ({zone}).",
                    }
                )
            config["Overrides"] = kept
        return errors

    def _decide_fate(self, backend: Any, instance_id: str) -> None:
        with self._lock:
            fate = _take(self._fates, lambda _: True)
        if fate is None:
            return
        instance = backend.get_instance(instance_id)
        if fate.dies_after is None:
            instance._state.name, instance._state.code = "pending", 0
            with self._lock:
                self.fired["never_running"] += 1
            return
        timer = threading.Timer(fate.dies_after, self._die, (backend, instance_id))
        timer.daemon = True
        with self._lock:
            self._timers.append(timer)
            self.fired["dies_after_launch"] += 1
        timer.start()

    def _die(self, backend: Any, instance_id: str) -> None:
        """Shutting-down now, terminated a moment later, with the reason EC2 gives a host failure."""
        from moto.ec2.models.instances import StateReason

        instance = backend.get_instance(instance_id)
        if instance.state != "running":
            return
        instance._state.name, instance._state.code = "shutting-down", 32
        with self._lock:
            self.fired["died"] += 1
            self.died.append(instance_id)
        instance.state_reason = StateReason(*HOST_FAILURE)
        timer = threading.Timer(SHUTTING_DOWN_SECONDS, self._terminate, (backend, instance_id))
        timer.daemon = True
        with self._lock:
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    @staticmethod
    def _terminate(backend: Any, instance_id: str) -> None:
        from moto.ec2.models.instances import StateReason

        instance = backend.get_instance(instance_id)
        if instance.state == "shutting-down":
            instance.terminate()
            instance.state_reason = StateReason(
                "Server.InternalError: Internal error", "Server.InternalError"
            )


def _take(rules: list[Any], matches: Callable[[Any], bool]) -> Any:
    """Spend one firing of the first armed rule that ``matches`` (caller holds the lock)."""
    for rule in rules:
        if rule.remaining > 0 and matches(rule):
            rule.remaining -= 1
            if rule.remaining == 0:
                rules.remove(rule)
            return rule
    return None


def _overrides_left(params: dict[str, Any]) -> bool:
    return any(config.get("Overrides") for config in params.get("LaunchTemplateConfigs") or [])


def _zone_of(handler: Any, subnet_id: str | None) -> str:
    if not subnet_id:
        return ""
    return str(handler.ec2_backend.get_subnet(subnet_id).availability_zone)


def _error(handler: Any, code: str, message: str, status: int) -> Response:
    """EC2's error XML for ``code``, with ``status`` (moto's serializer answers 400 otherwise)."""
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError

    _, headers, body = handler.serialized(ActionResult(EC2ClientError(code, message)))
    headers["status"] = str(status)
    return status, headers, body
