"""In-process controllers: Deployment -> ReplicaSet -> Pods, PDB status, garbage collection."""

from localcluster.apiserver.controllers.manager import ControllerManager

__all__ = ["ControllerManager"]
