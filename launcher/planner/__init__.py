"""The launcher's planner: pending pods in, the cheapest NodeClaims that serve them out.

Pure code (no I/O): ``plan.plan`` is the entry point, ``inputs`` its data types, ``fit`` the
pool and instance-type rules, ``topology`` where topology spread and pod (anti-)affinity let
each pod go, ``colocation`` which pods may share a node, ``bundles`` pods that must,
``packing`` the bin-packing, ``improve`` the merge pass after it, ``exact`` the exact plans of
small pools (a mixed-integer program), ``lowerbound`` the LP bound, ``offerings`` the short-lived
memory of offerings that ran out of capacity.
"""

from launcher.planner.inputs import InFlightClaim, NodeRoom, Plan, PlannedClaim, PoolView
from launcher.planner.plan import plan

__all__ = ["InFlightClaim", "NodeRoom", "Plan", "PlannedClaim", "PoolView", "plan"]
