"""Provisioning: from pending demand to NodeClaims.

``claims`` builds NodeClaim objects from a plan (pure); ``provisioner`` waits for demand,
coalesces it briefly, plans with ``launcher.planner`` and creates the claims.
"""
