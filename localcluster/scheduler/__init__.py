"""An emulated kube-scheduler for the local cluster: in-tree filters, scoring, HTTP extenders.

``Scheduler(api_client, load_scheduler_config(path_or_yaml))`` schedules pending pods of the
configured profiles through the API server, calling extenders exactly as kube-scheduler does.
"""

from localcluster.scheduler.config import (
    ExtenderConfig,
    ManagedResource,
    Profile,
    SchedulerConfig,
    Scoring,
    load_scheduler_config,
    parse_scheduler_config,
)
from localcluster.scheduler.loop import Scheduler

__all__ = [
    "ExtenderConfig",
    "ManagedResource",
    "Profile",
    "Scheduler",
    "SchedulerConfig",
    "Scoring",
    "load_scheduler_config",
    "parse_scheduler_config",
]
