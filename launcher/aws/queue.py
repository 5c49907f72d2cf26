"""The interruption queue: SQS long polls and deletes, the only SQS calls the launcher makes.

The queue is given by name (as Karpenter's ``interruptionQueue`` is) and resolved to its URL
once with GetQueueUrl, or given as its URL directly (then no GetQueueUrl). A receive holds one
long poll open up to 20 s for up to 10 messages and hides what it returns for the visibility
timeout: a message not deleted by then (the launcher died while handling it) comes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from launcher.aws.session import LONG_POLL_SECONDS, AWSClients

MAX_MESSAGES: Final = 10  # SQS's maximum per ReceiveMessage


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    receipt_handle: str
    body: str


class InterruptionQueue:
    """Receives and deletes messages of one SQS queue (see the module docstring)."""

    def __init__(self, clients: AWSClients, queue: str, visibility_timeout: int = 60) -> None:
        if not queue:
            raise ValueError("queue must name an SQS queue or give its URL")
        self._clients = clients
        self._queue = queue
        self._url = queue if queue.startswith(("https://", "http://")) else None
        self._visibility_timeout = visibility_timeout

    async def url(self) -> str:
        if self._url is None:
            response: dict[str, Any] = await self._clients.sqs.get_queue_url(QueueName=self._queue)
            self._url = str(response["QueueUrl"])
        return self._url

    async def receive(self, wait_seconds: int = LONG_POLL_SECONDS) -> list[QueueMessage]:
        """Up to 10 messages, waiting up to ``wait_seconds`` for the first."""
        response: dict[str, Any] = await self._clients.sqs.receive_message(
            QueueUrl=await self.url(),
            MaxNumberOfMessages=MAX_MESSAGES,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=self._visibility_timeout,
        )
        return [
            QueueMessage(str(m.get("MessageId", "")), str(m["ReceiptHandle"]), str(m.get("Body", "")))
            for m in response.get("Messages") or []
        ]

    async def delete(self, message: QueueMessage) -> None:
        await self._clients.sqs.delete_message(
            QueueUrl=await self.url(), ReceiptHandle=message.receipt_handle
        )
