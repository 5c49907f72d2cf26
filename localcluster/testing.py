"""pytest fixtures that start the local test doubles (moto EC2, the local cluster) on loopback."""

from __future__ import annotations
