"""HTTP client for scheduler extenders, calling them exactly as kube-scheduler does.

One :class:`Extender` per ``extenders[]`` entry: POST ``{urlPrefix}/{verb}`` with a JSON body,
``Content-Type: application/json``, the configured ``httpTimeout`` for the whole call, and only
HTTP 200 accepted. Whether a failure is fatal for the scheduling attempt (``ignorable``) is the
caller's decision, as in kube-scheduler's ``findNodesThatPassExtenders``.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Sequence

import aiohttp

from .config import ExtenderConfig, TLSConfig
from .model import Obj, PodFacts
from .wire import (
    ExtenderError,
    FilterResult,
    decode_binding_result,
    decode_filter_result,
    decode_priorities,
    encode_args,
    encode_binding,
)

_HEADERS = {"Content-Type": "application/json"}


def ssl_context(tls: TLSConfig | None) -> ssl.SSLContext | None:
    """The TLS settings of an HTTPS extender (None: aiohttp's defaults).

    Reads certificate files, so build it before serving (the Scheduler does so in ``__init__``).
    """
    if tls is None:
        return None
    ca_data = base64.b64decode(tls.ca_data).decode() if tls.ca_data else None
    context = ssl.create_default_context(cafile=tls.ca_file or None, cadata=ca_data)
    if tls.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file or None)
    return context


class Extender:
    """One configured extender; see the module docstring for the call contract."""

    def __init__(self, config: ExtenderConfig) -> None:
        self.config = config
        self._managed = frozenset(r.name for r in config.managed_resources)
        self._timeout = aiohttp.ClientTimeout(total=config.http_timeout)
        self._ssl: ssl.SSLContext | bool = ssl_context(config.tls) or True
        self._server_name = config.tls.server_name if config.tls and config.tls.server_name else None

    @property
    def name(self) -> str:
        return self.config.url_prefix

    @property
    def ignorable(self) -> bool:
        return self.config.ignorable

    @property
    def can_filter(self) -> bool:
        return bool(self.config.filter_verb)

    @property
    def can_prioritize(self) -> bool:
        return bool(self.config.prioritize_verb)

    @property
    def can_bind(self) -> bool:
        return bool(self.config.bind_verb)

    def is_interested(self, pod: PodFacts) -> bool:
        """Without managedResources always; else when a container requests or limits one of them."""
        return not self._managed or not self._managed.isdisjoint(pod.resource_names)

    async def _post(self, session: aiohttp.ClientSession, verb: str, body: bytes) -> bytes:
        url = self.config.url(verb)
        try:
            async with session.post(
                url,
                data=body,
                headers=_HEADERS,
                timeout=self._timeout,
                ssl=self._ssl,
                server_hostname=self._server_name,
            ) as response:
                payload = await response.read()
                if response.status != 200:
                    raise ExtenderError(f"failed {verb} with extender at URL {url}, code {response.status}")
                return payload
        except TimeoutError:
            raise ExtenderError(
                f'Post "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
            ) from None
        except aiohttp.ClientError as exc:
            raise ExtenderError(f'Post "{url}": {exc}') from None

    async def filter(self, session: aiohttp.ClientSession, pod: Obj, nodes: Sequence[Obj]) -> FilterResult:
        """The filter call; an extender without filterVerb passes every node without a call."""
        names = [str((n.get("metadata") or {}).get("name", "")) for n in nodes]
        if not self.can_filter:
            return FilterResult(tuple(names))
        body = encode_args(pod, nodes, node_cache_capable=self.config.node_cache_capable)
        answer = await self._post(session, self.config.filter_verb, body)
        return decode_filter_result(answer, names, node_cache_capable=self.config.node_cache_capable)

    async def prioritize(
        self, session: aiohttp.ClientSession, pod: Obj, nodes: Sequence[Obj]
    ) -> list[tuple[str, int]]:
        """The prioritize call: (host, 0..10 score) pairs; no call and no scores without the verb."""
        if not self.can_prioritize:
            return []
        body = encode_args(pod, nodes, node_cache_capable=self.config.node_cache_capable)
        return decode_priorities(await self._post(session, self.config.prioritize_verb, body))

    async def bind(self, session: aiohttp.ClientSession, pod: PodFacts, node: str) -> None:
        """Delegate the binding of ``pod`` to ``node`` to the extender."""
        body = encode_binding(pod.namespace, pod.name, pod.uid, node)
        decode_binding_result(await self._post(session, self.config.bind_verb, body))
