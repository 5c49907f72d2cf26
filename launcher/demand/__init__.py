"""The receiving end of the extenders' demand streams: the ``/v1/demand`` WebSocket server and
the :class:`~launcher.demand.book.DemandBook` the planner reads merged demand from."""

from launcher.demand.book import DemandBook
from launcher.demand.server import DemandServer

__all__ = ["DemandBook", "DemandServer"]
