"""Karpenter manifests to ``jitnode.io/v1``: pure functions on plain dicts.

``convert(documents, options) -> Conversion`` takes parsed YAML documents (Provisioner and
AWSNodeTemplate from the v1alpha5 era, NodePool and EC2NodeClass from v1beta1 and v1) and returns
jitnode NodePools and EC2NodeClasses plus a list of findings: what could not be mapped
(*dropped*, by field path) and which defaults were written out (*notes*). ``load_documents`` and
``dump_documents`` turn YAML text into documents and back. The ``jitnode convert`` command in
``cli.convert`` is the I/O shell around them.
"""

from __future__ import annotations

from shared.convert.batch import Conversion, convert
from shared.convert.options import ConvertOptions
from shared.convert.report import Finding, Report, Severity
from shared.convert.yamltext import dump_documents, load_documents

__all__ = [
    "Conversion",
    "ConvertOptions",
    "Finding",
    "Report",
    "Severity",
    "convert",
    "dump_documents",
    "load_documents",
]
