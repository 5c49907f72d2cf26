"""Status like Karpenter's on NodePools, EC2NodeClasses and NodeClaims.

``conditions`` (the metav1.Condition rules: a root ``Ready`` over dependents, transition times),
``nodeclass``, ``nodepool`` and ``nodeclaim`` (what each object's status should be) and
``resources`` (each pool's node totals, kept incrementally) are pure: plain data in, status out.
``patch`` turns a wanted status into the merge patch that gets there, or None when nothing changed.
``controller`` is the imperative shell: it feeds them informer events and writes the result.
"""
