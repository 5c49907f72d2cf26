"""NodeClaim lifecycle: launch, registration, initialization, termination and leak collection.

``decisions`` and ``garbage`` are pure (what to do next, from plain data); ``controller`` and
``collector`` carry the decisions out against EC2 and the Kubernetes API.
"""
