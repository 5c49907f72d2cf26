"""The interruption controller: long-poll the queue, act on each notice, then delete it.

Leader-only. Each receive returns up to 10 messages; the batch is handled in one pass:

1. every body is parsed (:mod:`messages`); one that cannot be read is logged with the fields
   at fault, counted and deleted: it would never read better, and left on the queue it would
   come back forever;
2. each event's instances are looked up in an index of NodeClaims by instance id (kept current
   by informer events, so a lookup does not walk the cluster), and :func:`decisions.respond`
   says what to do;
3. interrupted Spot offerings go into the unavailable-offerings cache before anything is
   planned, so the replacements avoid them;
4. one disruption snapshot is taken for the whole batch and the nodes' replacements are sized
   together (:func:`decisions.replacement_actions`); each node is then marked with the
   ``Interrupted`` reason and the notice's deadline, its replacements are created, and the
   disruption controller drains it: replacements first where the deadline allows, PDBs
   honoured, the NodeClaim deleted by the deadline (``DisruptionController.interrupt``);
5. a message is deleted once every node it names is handled: marked (the mark is what a
   restarted launcher resumes from, so the message is no longer needed), or not ours. A claim
   that has no node yet is deleted outright (its instance goes; its pods are planned again).
   A message whose handling failed is left to come back after its visibility timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from launcher import metrics
from launcher.aws.queue import InterruptionQueue, QueueMessage
from launcher.disruption.controller import DisruptionController
from launcher.disruption.decisions import NodeInfo
from launcher.disruption.drain import node_reference
from launcher.interruption.decisions import Kind, Policy, Response, offering_of, replacement_actions, respond
from launcher.interruption.instances import ClaimsByInstance
from launcher.interruption.messages import InterruptionEvent, parse_message
from launcher.kube import NodeClaimWriter
from launcher.planner.offerings import UnavailableOfferings
from launcher.state import LauncherState
from launcher.warmpool.claims import stopped_on_purpose
from shared.backoff import Backoff
from shared.errors import ValidationError
from shared.events import NORMAL, WARNING, EventRecorder
from shared.logs import get_logger

log = get_logger("launcher.interruption")


@dataclass
class _Received:
    """One message of a batch and what handling it needs."""

    message: QueueMessage
    event: InterruptionEvent | None = None
    response: Response | None = None
    nodes: list[str] = field(default_factory=list)  # nodes to mark before the message goes
    failed: bool = False


class InterruptionController:
    def __init__(
        self,
        *,
        queue: InterruptionQueue,
        state: LauncherState,
        index: ClaimsByInstance,
        disruption: DisruptionController,
        claims: NodeClaimWriter,
        unavailable: UnavailableOfferings,
        events: EventRecorder,
        policy: Policy | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._queue = queue
        self._state = state
        self._index = index
        self._disruption = disruption
        self._claims = claims
        self._unavailable = unavailable
        self._events = events
        self.policy = policy or Policy()
        self._now = now

    async def run(self) -> None:
        """Receive and handle batches until cancelled; errors back off and retry."""
        await self._state.wait_synced()
        backoff = Backoff(base=1.0, cap=60.0)
        watching = False
        while True:
            try:
                if not watching:
                    log.info("watching the interruption queue", queue=await self._queue.url())
                    watching = True
                messages = await self._queue.receive()
                if messages:
                    await self.handle(messages)
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                delay = backoff.next_delay()
                log.warning("interruption queue receive failed", error=str(error), retry_in=round(delay, 1))
                await asyncio.sleep(delay)

    async def handle(self, messages: Sequence[QueueMessage]) -> list[QueueMessage]:
        """Handle one batch (see the module docstring); returns the messages deleted."""
        now = self._now()
        received = [self._read(message, now) for message in messages]
        targets: dict[str, Response] = {}
        for item in received:
            if item.response is not None and item.event is not None:
                await self._resolve(item, targets)
        if targets:
            await self._act(targets, received, now)
        deleted: list[QueueMessage] = []
        for item in received:
            if item.failed:
                continue
            try:
                await self._queue.delete(item.message)
            except Exception as error:  # it comes back after its visibility timeout: handled again
                log.warning(
                    "interruption message not deleted", message=item.message.message_id, error=str(error)
                )
                continue
            deleted.append(item.message)
        return deleted

    def _read(self, message: QueueMessage, now: datetime) -> _Received:
        item = _Received(message)
        try:
            item.event = parse_message(message.body)
        except ValidationError as error:
            log.error("unreadable interruption message deleted", message=message.message_id, error=str(error))
            metrics.INTERRUPTION_MESSAGES.labels("invalid", "deleted").inc()
            return item
        item.response = respond(item.event, self.policy, now)
        metrics.INTERRUPTION_MESSAGES.labels(item.response.event, item.response.kind.value).inc()
        return item

    async def _resolve(self, item: _Received, targets: dict[str, Response]) -> None:
        """Find the nodes of the event's instances; act at once where there is no node to drain."""
        assert item.event is not None
        assert item.response is not None
        response = item.response
        bound = log.bind(message=item.message.message_id, event=response.event)
        if response.kind is Kind.IGNORE:
            bound.debug("interruption event ignored", why=response.message)
            return
        claims = self._state.nodeclaim_informer.store()  # by name: one lookup per instance
        for instance_id in item.event.instance_ids:
            name = self._index.claim(instance_id)
            claim = claims.get(name) if name is not None else None
            if name is None or claim is None:
                bound.info("interruption event for an instance jitnode does not manage", instance=instance_id)
                continue
            if (claim.get("metadata") or {}).get("deletionTimestamp"):
                continue  # already going
            if response.event == "InstanceStopping" and stopped_on_purpose(claim):
                continue  # the warm pool stops (and starts) this one itself (launcher.warmpool)
            node = (claim.get("status") or {}).get("nodeName")
            if not node or node not in self._state.nodes():
                if response.kind is Kind.REPLACE:
                    bound.info("deleting a nodeclaim without a node", nodeclaim=name, instance=instance_id)
                    try:
                        await self._claims.delete(name)
                    except Exception as error:
                        bound.warning("nodeclaim not deleted", nodeclaim=name, error=str(error))
                        item.failed = True
                continue
            node = str(node)
            bound.warning(
                "interruption notice",
                node=node,
                instance=instance_id,
                kind=response.kind.value,
                why=response.message,
            )
            await self._events.record(
                node_reference(node),
                WARNING if response.kind is Kind.REPLACE else NORMAL,
                response.event,
                response.message,
            )
            if response.kind is Kind.REPLACE:
                item.nodes.append(node)
                targets[node] = _sooner(targets.get(node), response)

    async def _act(
        self, targets: Mapping[str, Response], received: Sequence[_Received], now: datetime
    ) -> None:
        snapshot = self._disruption.snapshot(now)
        infos = {n.name: n for n in snapshot.nodes}
        chosen: list[tuple[NodeInfo, Response]] = []
        for node, response in targets.items():
            info = infos.get(node)
            if info is None or not info.managed:
                continue
            offering = offering_of(info.labels)
            if response.offering_unavailable and offering is not None:
                if not self._unavailable.is_unavailable(*offering):
                    metrics.OFFERINGS_UNAVAILABLE.labels(offering.capacity_type).inc()
                self._unavailable.mark(*offering)
                log.info("interrupted offering marked unavailable", node=node, offering=list(offering))
            chosen.append((info, response))
        actions = replacement_actions(chosen, snapshot, self._unavailable.snapshot())
        done: set[str] = set(targets) - {info.name for info, _ in chosen}
        for action, (_, response) in zip(actions, chosen, strict=True):
            try:
                if await self._disruption.interrupt(action, response.deadline):
                    done.add(action.node)
            except Exception as error:
                log.warning("interruption not started", node=action.node, error=str(error))
        for item in received:
            if any(node not in done for node in item.nodes):
                item.failed = True


def _sooner(current: Response | None, new: Response) -> Response:
    """Of two notices for one node, the one with the earlier deadline (None is the latest)."""
    if current is None:
        return new
    far = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)
    return new if (new.deadline or far) < (current.deadline or far) else current
