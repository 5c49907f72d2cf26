"""The extender's settings (YAML file, then ``JITNODE_EXTENDER_*`` environment, then flags).

Loaded with :func:`shared.config.load_config`; see ``python -m extender --help`` for every flag.
Secrets are never values here: the stream token is read from a file (a mounted Secret).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from shared.config import Seconds

ENV_PREFIX: Final = "JITNODE_EXTENDER_"


@dataclass(frozen=True)
class ServerConfig:
    host: str = field(default="0.0.0.0", metadata={"help": "address to listen on"})
    port: int = field(default=8888, metadata={"help": "HTTP port for the scheduler, probes and metrics"})
    prefix: str = field(default="/jitnode", metadata={"help": "urlPrefix kube-scheduler calls (…/filter)"})
    max_body_bytes: int = field(default=16 * 2**20, metadata={"help": "larger request bodies get a 400"})
    shutdown_grace: Seconds = field(default=10.0, metadata={"help": "time to finish in-flight calls"})
    tls_cert_file: str = field(
        default="", metadata={"help": "PEM serving certificate (chain); empty: plain HTTP"}
    )
    tls_key_file: str = field(default="", metadata={"help": "PEM private key (empty: in tls_cert_file)"})
    tls_reload_interval: Seconds = field(
        default=5.0, metadata={"help": "how often to check the certificate files for a renewal (0: never)"}
    )


@dataclass(frozen=True)
class StreamConfig:
    url: str = field(
        default="", metadata={"help": "launcher demand WebSocket (wss://launcher:8443/v1/demand)"}
    )
    token_file: str = field(default="", metadata={"help": "file holding the bearer token (a mounted Secret)"})
    ca_file: str = field(default="", metadata={"help": "CA bundle to verify the launcher's TLS certificate"})
    insecure_skip_verify: bool = field(default=False, metadata={"help": "do not verify TLS (tests only)"})
    heartbeat: Seconds = field(default=5.0, metadata={"help": "heartbeat interval on the stream"})
    source: str = field(default="", metadata={"help": "replica id on the stream (default: hostname)"})


@dataclass(frozen=True)
class PredictionConfig:
    enabled: bool = field(default=True, metadata={"help": "predict shortfall at filter time"})
    headroom: int = field(default=1, metadata={"help": "pods of each shape to keep room for after placing"})
    ttl: Seconds = field(
        default=300.0, metadata={"help": "withdraw a prediction not confirmed for this long"}
    )
    queue_size: int = field(default=10_000, metadata={"help": "filter calls waiting for prediction"})
    recheck_interval: Seconds = field(default=0.1, metadata={"help": "least time between re-evaluations"})


@dataclass(frozen=True)
class ExtenderConfig:
    server: ServerConfig = field(default_factory=ServerConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    prediction: PredictionConfig = field(default_factory=PredictionConfig)
    kubeconfig: str = field(default="", metadata={"help": "kubeconfig path (default: in-cluster)"})
    expiry_window: Seconds = field(default=600.0, metadata={"help": "nodes expiring within this score 0"})
    watch_timeout: int = field(default=300, metadata={"help": "seconds per watch request"})
    heap_freeze_interval: Seconds = field(
        default=300.0,
        metadata={"help": "re-freeze the cached heap out of GC reach this often (0: once, after sync)"},
    )
    log_level: str = field(default="info", metadata={"help": "debug, info, warning, error"})
