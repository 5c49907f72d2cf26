"""The time-to-capacity simulator behind ``bench/capacity_sim.py`` (issue 14).

Discrete-event, on simulated time: pod arrival traces (``traces``) are replayed through
provisioning policies (``policies``) on a simulated cluster (``engine``) whose new nodes are
planned by jitnode's real planner (``planning``, over ``launcher.planner.plan``) or, for the
Cluster Autoscaler, by node groups (``nodegroups``); boot times and prices with their published
sources are in ``params``, the table and the issue's target in ``report``.
"""
