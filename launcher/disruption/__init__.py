"""Voluntary and forceful disruption of jitnode's nodes: what to remove, and removing it safely.

``decisions`` (pure) picks empty, expired, drifted and underutilized nodes and whether they need
replacement capacity first; ``budgets`` (pure) applies NodePool disruption budgets; ``drift``
(pure) says whether a NodeClaim drifted (``status.drift`` writes its condition);
``donotdisrupt`` (pure) reads the opt-out annotation and its durations; ``mark`` (pure) is the
node annotation that records a disruption in progress, so a restarted launcher resumes it;
``drain`` (I/O) taints the node and evicts its pods through the Eviction API, never past a
PodDisruptionBudget; ``replacement`` (I/O) creates replacement NodeClaims; ``controller`` (I/O)
runs it all level-triggered. The last step of every disruption is deleting the NodeClaim: the
lifecycle controller then terminates the instance and deletes the Node.
"""
