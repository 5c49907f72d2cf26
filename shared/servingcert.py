"""A service's HTTPS serving certificate, reloaded in place when its files change.

kube-scheduler (``enableHTTPS``) and the API server (the webhook) call the extender, and the
extenders stream demand to the launcher, over TLS with the certificate from a Secret. cert-manager
renews that Secret, and kubelet updates the mounted files in place (it writes a new directory and
swaps the ``..data`` symlink). The server keeps one ``SSLContext`` for its lifetime, and every new
TLS connection uses whatever certificate that context holds at handshake time, so a renewal needs
no restart: the files are polled (by content hash, which sees symlink swaps, in-place rewrites and
same-second changes alike) and the new pair is loaded into the same context.

A new pair is first loaded into a scratch context in a worker thread: garbage, a half-written
file or a key that does not match its certificate is logged and the old pair keeps serving (a
failed ``load_cert_chain`` on the live context could leave it holding a certificate without its
key). Only a pair that loaded cleanly is loaded into the live context, on the event loop thread,
where the handshakes run too, so the context is never changed during a handshake.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import Callable
from pathlib import Path

from shared.logs import get_logger
from shared.tasks import cancel_and_wait

_log = get_logger(__name__)

# Outcomes reported to ``on_reload``.
RELOADED = "ok"
REJECTED = "failed"


def _new_context() -> ssl.SSLContext:
    # Purpose.CLIENT_AUTH: a server-side context with the stdlib's safe defaults (TLS >= 1.2).
    return ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)


def _fingerprint(cert_file: str, key_file: str | None) -> str:
    digest = hashlib.sha256(Path(cert_file).read_bytes())
    if key_file:
        digest.update(b"\0")
        digest.update(Path(key_file).read_bytes())
    return digest.hexdigest()


def _check_pair(cert_file: str, key_file: str | None) -> None:
    """Raise (``ssl.SSLError``, ``OSError``) unless the pair loads and matches."""
    _new_context().load_cert_chain(cert_file, key_file)


class ServingCertificate:
    """An ``SSLContext`` for the server, kept loaded with the current certificate files.

    ``key_file`` may be empty when the key is in ``cert_file``. ``on_reload(outcome)`` is called
    after each reload attempt of changed files (``"ok"`` or ``"failed"``), for metrics.
    """

    def __init__(
        self,
        cert_file: str,
        key_file: str = "",
        *,
        interval: float = 5.0,
        on_reload: Callable[[str], None] | None = None,
    ) -> None:
        self.cert_file = cert_file
        self.key_file = key_file or None
        self.interval = interval
        self.on_reload = on_reload
        self.context = _new_context()
        self.reloads = 0
        self._loaded = ""  # fingerprint of the pair the context holds
        self._rejected = ""  # fingerprint of the last pair that failed to load (logged once)
        self._task: asyncio.Task[None] | None = None

    async def load(self) -> None:
        """The first load, before serving: a missing or bad pair fails the start, loudly."""
        fingerprint = await asyncio.to_thread(_fingerprint, self.cert_file, self.key_file)
        await asyncio.to_thread(self.context.load_cert_chain, self.cert_file, self.key_file)
        self._loaded = fingerprint
        _log.info("tls.loaded", cert_file=self.cert_file, fingerprint=fingerprint[:16])

    async def reload_if_changed(self) -> bool:
        """Load the files into the live context if their content changed and they are valid.

        Returns True when a new pair was loaded. Never raises for bad files: the old pair stays.
        """
        try:
            fingerprint = await asyncio.to_thread(_fingerprint, self.cert_file, self.key_file)
        except OSError as exc:  # mid-swap or the Secret went away: keep serving what we have
            self._reject(f"unreadable: {exc}", exc)  # logged once per distinct error
            return False
        if fingerprint in (self._loaded, self._rejected):
            return False
        try:
            await asyncio.to_thread(_check_pair, self.cert_file, self.key_file)
            # On the loop thread: no handshake can be using the context meanwhile.
            self.context.load_cert_chain(self.cert_file, self.key_file)
        except (ssl.SSLError, OSError, ValueError) as exc:
            self._reject(fingerprint, exc)
            return False
        self._loaded, self._rejected = fingerprint, ""
        self.reloads += 1
        _log.info("tls.reloaded", cert_file=self.cert_file, fingerprint=fingerprint[:16])
        if self.on_reload is not None:
            self.on_reload(RELOADED)
        return True

    def _reject(self, fingerprint: str, exc: Exception) -> None:
        if fingerprint == self._rejected:
            return
        self._rejected = fingerprint
        _log.error(
            "tls.reload_failed",
            cert_file=self.cert_file,
            key_file=self.key_file,
            error=repr(exc),
            serving=self._loaded[:16],
        )
        if self.on_reload is not None:
            self.on_reload(REJECTED)

    # Polling ------------------------------------------------------------------------------

    def start(self) -> None:
        """Poll the files every ``interval`` seconds in the background."""
        if self._task is None and self.interval > 0:
            self._task = asyncio.create_task(self._poll(), name="tls-reload")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.reload_if_changed()
            except Exception as exc:  # the poller must outlive any surprise
                _log.exception("tls.poll_failed", error=repr(exc))
