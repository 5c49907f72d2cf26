"""What a conversion could not carry over, and what it filled in, by object and field path.

A conversion never fails silently: every input field it drops is a *dropped* finding (the
``jitnode convert`` command then exits 3, so scripts notice), and every value it had to choose
for the user, such as an AMI alias where Karpenter had an implicit default, is a *note*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Severity(Enum):
    DROPPED = "dropped"  # part of the input has no jitnode equivalent and is not in the output
    NOTE = "note"  # the output holds a value the input did not spell out


@dataclass(frozen=True)
class Finding:
    """One field of one input object (``Provisioner/default``, ``spec.kubeletConfiguration.maxPods``)."""

    subject: str
    path: str
    message: str
    severity: Severity

    def __str__(self) -> str:
        where = f"{self.subject}: {self.path}" if self.path else self.subject
        return f"{self.severity.value}: {where}: {self.message}"


@dataclass
class Report:
    """Findings about one input object, collected while it is converted."""

    subject: str
    findings: list[Finding] = field(default_factory=list)

    def drop(self, path: str, message: str) -> None:
        self.findings.append(Finding(self.subject, path, message, Severity.DROPPED))

    def note(self, path: str, message: str) -> None:
        self.findings.append(Finding(self.subject, path, message, Severity.NOTE))

    def dropped(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.DROPPED]
