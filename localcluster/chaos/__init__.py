"""The fault-injection toolkit for the chaos suite (``make chaos``) and the soak (``bench/soak.py``).

Faults are injected where a real cluster would suffer them (processes, the API server, EC2 on
moto's side), and :mod:`localcluster.chaos.invariants` then checks that nothing was lost: no
leaked or duplicate instance, every pending pod Running, no PodDisruptionBudget broken, no
demand dropped in silence.
"""
