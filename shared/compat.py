"""The Kubernetes versions jitnode supports, in one place.

The minimum is the oldest minor that EKS still runs under standard or extended support; the
CRDs' CEL rules must compile in that server's environment, and tests read it from here.
"""

from __future__ import annotations

from typing import Final

MIN_KUBERNETES_MINOR: Final = 32
"""Oldest supported Kubernetes minor version (1.32)."""
