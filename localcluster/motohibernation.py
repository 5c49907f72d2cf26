"""Hibernation on moto as EC2 has it: ``StopInstances`` with ``Hibernate`` refused unless the
instance was launched for it.

moto accepts ``Hibernate=true`` for any instance and stops it plainly, so a launcher that never
configures hibernation would pass every test. EC2 hibernates only an instance launched with
``HibernationOptions.Configured`` (from its launch template, for CreateFleet), on a type that
supports hibernation with at most 150 GiB of RAM, from a template whose root volume is encrypted
and larger than the RAM; it answers anything else with ``UnsupportedHibernationConfiguration``.

Two patches, installed with :mod:`localcluster.motocache` when a :class:`~localcluster.ec2.MotoEC2`
starts, so the local cluster and every test get them:

- an instance a fleet launches from a template records the template's ``HibernationOptions``
  (moto's fleets forget the template), and, when configured, whatever in the template or type
  EC2 would not accept. EC2 refuses such a launch outright; here the instance launches and its
  hibernation is refused, which the launcher meets as a plain stop;
- ``StopInstances`` with ``Hibernate=true`` is refused for an instance not configured, or
  configured wrongly.

Only on-demand fleets are covered (spot instances cannot be stopped by the warm pool).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

REFUSED: Final = "UnsupportedHibernationConfiguration"
MAX_RAM_GIB: Final = 150
# The EKS AMIs' root device (moto's RegisterImage drops RootDeviceName, so it cannot be read back).
ROOT_DEVICE: Final = "/dev/xvda"
# Set on moto's instance: why EC2 would not have launched it ready for hibernation.
_PROBLEM: Final = "jitnode_hibernation_problem"

_lock = threading.Lock()
_installed = False


def launch_problem(
    template_data: Mapping[str, Any], instance_type: Mapping[str, Any], root_device: str = ROOT_DEVICE
) -> str | None:
    """Why EC2 would refuse a hibernation-configured launch from ``template_data`` on a type
    described by ``instance_type`` (a DescribeInstanceTypes entry) with an AMI whose root device
    is ``root_device``; None when it would not."""
    if not instance_type.get("HibernationSupported"):
        return f"instance type {instance_type.get('InstanceType')} does not support hibernation"
    ram_gib = math.ceil(int((instance_type.get("MemoryInfo") or {}).get("SizeInMiB", 0)) / 1024)
    if ram_gib > MAX_RAM_GIB:
        return f"{ram_gib} GiB of RAM is more than hibernation allows ({MAX_RAM_GIB} GiB)"
    mappings = template_data.get("BlockDeviceMappings") or []
    root = next((m for m in mappings if m.get("DeviceName") == root_device), None)
    ebs = (root or {}).get("Ebs") or {}
    if not ebs.get("Encrypted"):
        return "the root volume is not encrypted"
    if int(ebs.get("VolumeSize") or 0) <= ram_gib:
        return f"the root volume ({ebs.get('VolumeSize')} GiB) has no room for {ram_gib} GiB of RAM"
    return None


def is_configured(template_data: Mapping[str, Any]) -> bool:
    return bool((template_data.get("HibernationOptions") or {}).get("Configured"))


def refusal(instance: Any) -> str | None:
    """Why ``StopInstances`` with ``Hibernate`` is refused for moto's ``instance``; None: it hibernates."""
    if not (getattr(instance, "hibernation_options", None) or {}).get("Configured"):
        return f"The instance '{instance.id}' is not enabled for hibernation."
    problem = getattr(instance, _PROBLEM, None)
    return f"The instance '{instance.id}' cannot hibernate: {problem}." if problem else None


def install() -> None:
    """Patch moto's fleets and ``StopInstances`` (once per process; later calls do nothing)."""
    global _installed
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.fleets import Fleet
    from moto.ec2.models.instance_types import INSTANCE_TYPES
    from moto.ec2.responses import EC2Response

    with _lock:
        if _installed:
            return
        _installed = True
        create_on_demand: Callable[..., None] = Fleet.create_on_demand_requests
        stop_instances: Callable[[Any], Any] = EC2Response.stop_instances

        def recording_create_on_demand(fleet: Any, weight_to_add: float) -> None:
            before = len(fleet.on_demand_instances)
            create_on_demand(fleet, weight_to_add)
            for launched in fleet.on_demand_instances[before:]:
                spec = launched["launch_spec"].launch_template_spec
                if not spec:
                    continue
                template = fleet.ec2_backend.get_launch_template(spec["LaunchTemplateId"])
                data = template.get_version(spec.get("Version", "$Latest")).data
                instance = launched["instance"]
                instance.hibernation_options = {"Configured": is_configured(data)}
                if is_configured(data):
                    described = INSTANCE_TYPES.get(instance.instance_type, {})
                    setattr(instance, _PROBLEM, launch_problem(data, described))

        def refusing_stop_instances(handler: Any) -> Any:
            if handler._get_bool_param("Hibernate", False):
                for instance_id in handler._get_param("InstanceIds", []):
                    problem = refusal(handler.ec2_backend.get_instance(instance_id))
                    if problem is not None:
                        raise EC2ClientError(REFUSED, problem)
            return stop_instances(handler)

        setattr(Fleet, "create_on_demand_requests", recording_create_on_demand)  # noqa: B010
        setattr(EC2Response, "stop_instances", refusing_stop_instances)  # noqa: B010
