"""``jitnode convert``: Karpenter manifests in, ``jitnode.io/v1`` manifests out.

The I/O shell around the pure conversion in :mod:`shared.convert`: it reads files or stdin,
writes files or stdout, and turns findings into messages and an exit status (0 everything
mapped, 3 output written but something left behind, 2 input it cannot read or does not know).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, TextIO

from shared.convert import ConvertOptions, Severity, convert, dump_documents, load_documents
from shared.errors import ValidationError

EXIT_OK: Final = 0
EXIT_INVALID: Final = 2
EXIT_DROPPED: Final = 3
STDIN: Final = "-"


def add_arguments(conv: argparse.ArgumentParser) -> None:
    """The options of ``jitnode convert``."""
    conv.add_argument(
        "-f",
        "--filename",
        action="append",
        metavar="FILE",
        help="multi-document YAML to convert, '-' for stdin (repeatable; default: stdin)",
    )
    target = conv.add_mutually_exclusive_group()
    target.add_argument("-o", "--output", metavar="FILE", help="write the result here instead of stdout")
    target.add_argument(
        "--output-dir",
        metavar="DIR",
        help="write one file per kind into DIR: jitnode-nodepool.yaml, jitnode-ec2nodeclass.yaml",
    )
    identity = conv.add_mutually_exclusive_group()
    identity.add_argument(
        "--role", help="IAM role for node classes that name none (Karpenter's global default profile)"
    )
    identity.add_argument("--instance-profile", help="instance profile for node classes that name none")
    conv.add_argument("-q", "--quiet", action="store_true", help="print only what was dropped, not notes")


def by_kind_files(objects: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Objects grouped into files named by kind (``jitnode-nodepool.yaml``), in input order."""
    files: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        files.setdefault(f"jitnode-{str(obj['kind']).lower()}.yaml", []).append(obj)
    return files


def _read(sources: Sequence[str], stdin: TextIO) -> tuple[list[object], list[str]]:
    """Every document of every source, and where each came from (``seed.yaml, document 2``)."""
    documents: list[object] = []
    locations: list[str] = []
    for source in sources:
        name = "stdin" if source == STDIN else source
        text = stdin.read() if source == STDIN else Path(source).read_text(encoding="utf-8")
        found = load_documents(text, name)
        documents.extend(found)
        locations.extend(f"{name}, document {i}" for i in range(1, len(found) + 1))
    return documents, locations


def run_convert(args: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    """``jitnode convert`` with its streams passed in (blocking file I/O: a CLI, not a service)."""

    def say(message: str) -> None:
        print(f"jitnode convert: {message}", file=stderr)

    try:
        documents, locations = _read(args.filename or [STDIN], stdin)
        conversion = convert(
            documents, ConvertOptions(role=args.role, instance_profile=args.instance_profile), locations
        )
    except OSError as exc:
        say(f"cannot read {exc.filename}: {exc.strerror}")
        return EXIT_INVALID
    except ValidationError as exc:
        for line in [str(exc)] if len(exc.errors) <= 1 else [f"invalid {exc.kind}:", *map(str, exc.errors)]:
            say(line)
        return EXIT_INVALID
    if not conversion.objects:
        say("no Karpenter objects in the input")
        return EXIT_INVALID
    try:
        if args.output_dir:
            for name, objects in by_kind_files(conversion.objects).items():
                (Path(args.output_dir) / name).write_text(dump_documents(objects), encoding="utf-8")
        elif args.output:
            Path(args.output).write_text(dump_documents(conversion.objects), encoding="utf-8")
        else:
            stdout.write(dump_documents(conversion.objects))
    except OSError as exc:
        say(f"cannot write {exc.filename}: {exc.strerror}")
        return EXIT_INVALID
    for finding in conversion.findings:
        if finding.severity is Severity.DROPPED or not args.quiet:
            say(str(finding))
    if not conversion.complete:
        say(f"{len(conversion.dropped)} field(s) could not be mapped: review the output before applying it")
        return EXIT_DROPPED
    return EXIT_OK
