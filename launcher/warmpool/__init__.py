"""Warm pools: instances booted once, parked, and started when demand comes.

A warm instance is an ordinary NodeClaim labelled ``jitnode.io/warm`` (``claims``), so it is
launched, counted against limits, terminated and leak-collected like any claim, and survives a
launcher restart. ``sizing`` (pure) decides how many a pool keeps and of which instance types;
``steps`` (pure) takes each from joined to parked and back; ``candidates`` (pure) offers parked
instances to the planner before it buys new ones; ``cost`` (pure) prices them both ways;
``controller`` carries it all out against EC2 and the Kubernetes API.
"""
