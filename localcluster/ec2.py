"""The EC2 test double: moto in server mode on loopback, seeded like an eksctl cluster.

jitnode talks to EC2 over HTTP with aioboto3 and never knows it is moto. moto runs in this
process on a background thread (``ThreadedMotoServer``), so tests can also reach its backend
directly to inject faults or to seed what its API refuses, such as the reserved SSM path of the
EKS-optimized AMI parameter. Seeding mirrors what ``eksctl create cluster`` leaves behind: a
VPC, private subnets in three zones and a node security group, tagged with the cluster name
(``alpha.eksctl.io/cluster-name``, which the seed selects on), eksctl's node role, the Karpenter
getting-started guide's ``KarpenterNodeInstanceProfile-<cluster>``, and EKS-optimized AMIs
(x86_64 and arm64) behind their SSM parameters.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

DEFAULT_REGION: Final = "us-east-1"
DEFAULT_CLUSTER: Final = "jitnode-local"
ACCOUNT_ID: Final = "123456789012"
KUBERNETES_VERSION: Final = "1.31"
ZONES: Final = ("us-east-1a", "us-east-1b", "us-east-1c")
ESKCTL_CLUSTER_TAG: Final = "alpha.eksctl.io/cluster-name"
# Fake credentials: moto accepts any, and these can never reach real AWS by accident.
CREDENTIALS: Final = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
ARCHITECTURES: Final = ("x86_64", "arm64")


def eks_ami_parameter(arch: str, kubernetes_version: str = KUBERNETES_VERSION) -> str:
    """The public SSM parameter holding the recommended EKS AL2023 AMI for ``arch``."""
    return (
        f"/aws/service/eks/optimized-ami/{kubernetes_version}/amazon-linux-2023/"
        f"{arch}/standard/recommended/image_id"
    )


@dataclass(frozen=True)
class ClusterNetwork:
    """What the seeding created, so tests can assert selectors resolve to exactly this."""

    cluster: str
    region: str
    vpc_id: str
    subnets: dict[str, str]  # zone -> subnet id
    security_group_id: str
    amis: dict[str, str]  # architecture -> AMI id
    ami_parameters: dict[str, str] = field(default_factory=dict)  # architecture -> SSM name
    node_role: str = ""  # the IAM role nodes run as (an EC2NodeClass's ``role``)
    # The Karpenter getting-started guide's instance profile, which the converted seed names.
    instance_profile: str = ""


class EC2Endpoint:
    """Where an AWS SDK finds the EC2 double: what every client of it needs, wherever moto runs."""

    def __init__(self, region: str = DEFAULT_REGION) -> None:
        self.region = region
        self.endpoint = ""
        self.network: ClusterNetwork | None = None

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``session.client("ec2", **kwargs)`` (boto3 or aioboto3)."""
        return {
            "endpoint_url": self.endpoint,
            "region_name": self.region,
            "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        }

    def environment(self) -> dict[str, str]:
        """Environment variables that point an AWS SDK in a child process at this server."""
        return {
            **CREDENTIALS,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def instances(self) -> list[dict[str, Any]]:
        """Every instance moto holds, as DescribeInstances reports them (blocking)."""
        import boto3

        ec2 = boto3.client("ec2", **self.client_kwargs())
        pages = ec2.get_paginator("describe_instances").paginate()
        return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


class MotoEC2(EC2Endpoint):
    """A moto server (EC2, SSM, IAM, ...) on 127.0.0.1 and a free port, for one test or demo run."""

    def __init__(self, region: str = DEFAULT_REGION) -> None:
        super().__init__(region)
        self._server: Any = None

    def start(self, listening_fd: int | None = None) -> str:
        """Start the server thread; returns the endpoint URL. Takes milliseconds.

        ``listening_fd`` serves on a socket a parent process already bound and listens on
        (see :mod:`localcluster.motoprocess`) instead of a new one on a free port.
        """
        # Validation must be switched on before moto is imported, or bad types/AMIs pass.
        os.environ.setdefault("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", "true")
        os.environ.setdefault("MOTO_ENABLE_AMI_VALIDATION", "true")
        # Without moto's 1,300 public AMIs (each with a volume and a snapshot), a backend is built
        # in milliseconds instead of a fifth of a second, at every start and every reset. jitnode
        # only ever launches the EKS AMIs the seeding registers.
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        from moto.server import ThreadedMotoServer

        from localcluster import motocache

        motocache.install()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        if listening_fd is None:
            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        else:
            self._server = _InheritedSocketServer(listening_fd)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self.endpoint

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def reset(self) -> None:
        """Wipe every backend (all instances, templates, parameters)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def seed_eksctl_cluster(self, cluster: str = DEFAULT_CLUSTER) -> ClusterNetwork:
        """Create what eksctl leaves behind for ``cluster`` (blocking: call via ``to_thread``)."""
        import boto3

        ec2 = boto3.client("ec2", **self.client_kwargs())
        tags = [{"Key": ESKCTL_CLUSTER_TAG, "Value": cluster}, {"Key": "Name", "Value": f"eksctl-{cluster}"}]
        vpc_id = ec2.create_vpc(
            CidrBlock="192.168.0.0/16",
            TagSpecifications=[{"ResourceType": "vpc", "Tags": tags}],
        )["Vpc"]["VpcId"]
        subnets: dict[str, str] = {}
        for index, zone in enumerate(ZONES):
            subnet_tags = [
                *tags,
                {"Key": "kubernetes.io/role/internal-elb", "Value": "1"},
                {"Key": f"kubernetes.io/cluster/{cluster}", "Value": "shared"},
            ]
            subnets[zone] = ec2.create_subnet(
                VpcId=vpc_id,
                CidrBlock=f"192.168.{64 + index * 32}.0/19",
                AvailabilityZone=zone,
                TagSpecifications=[{"ResourceType": "subnet", "Tags": subnet_tags}],
            )["Subnet"]["SubnetId"]
        security_group_id = ec2.create_security_group(
            GroupName=f"eksctl-{cluster}-cluster-ClusterSharedNodeSecurityGroup",
            Description="Communication between all nodes in the cluster",
            VpcId=vpc_id,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}],
        )["GroupId"]
        amis = {arch: self._register_eks_ami(ec2, arch) for arch in ARCHITECTURES}
        node_role = f"eksctl-{cluster}-NodeInstanceRole"
        self._ensure_node_role(node_role)
        instance_profile = self._ensure_instance_profile(
            f"KarpenterNodeInstanceProfile-{cluster}", f"KarpenterNodeRole-{cluster}"
        )
        parameters = {arch: eks_ami_parameter(arch) for arch in ARCHITECTURES}
        for arch, name in parameters.items():
            self.put_reserved_parameter(name, amis[arch])
        self.network = ClusterNetwork(
            cluster=cluster,
            region=self.region,
            vpc_id=vpc_id,
            subnets=subnets,
            security_group_id=security_group_id,
            amis=amis,
            ami_parameters=parameters,
            node_role=node_role,
            instance_profile=instance_profile,
        )
        return self.network

    def _ensure_node_role(self, name: str) -> None:
        """Create the node role unless it exists: moto's IAM is global to the process, so a second
        cluster in the same test process (or a re-seed) finds the role already there."""
        import boto3

        iam = boto3.client("iam", **self.client_kwargs())
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
            iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=(
                    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                    '"Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
                ),
            )

    def _ensure_instance_profile(self, name: str, role: str) -> str:
        """The instance profile Karpenter's getting-started stack creates, holding its node role.

        The seed's AWSNodeTemplate names no instance profile: Karpenter used this one by default.
        """
        import boto3

        self._ensure_node_role(role)
        iam = boto3.client("iam", **self.client_kwargs())
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
            iam.create_instance_profile(InstanceProfileName=name)
        profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        if not any(r["RoleName"] == role for r in profile.get("Roles", [])):
            iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
        return name

    def _register_eks_ami(self, ec2: Any, arch: str) -> str:
        response = ec2.register_image(
            Name=f"amazon-eks-node-al2023-{arch}-standard-{KUBERNETES_VERSION}-v20261101",
            Architecture=arch,
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 20, "VolumeType": "gp3"}}],
        )
        image_id: str = response["ImageId"]
        # RegisterImage in moto drops Architecture; set it on the shared backend as AWS would.
        from moto.ec2.models import ec2_backends

        ec2_backends[ACCOUNT_ID][self.region].amis[image_id].architecture = arch
        return image_id

    def put_reserved_parameter(self, name: str, value: str) -> None:
        """Set an SSM parameter on a path AWS reserves (``/aws/service/...``).

        PutParameter refuses those paths, as AWS does, so this writes to moto's backend, which
        the threaded server shares with this process.
        """
        from moto.ssm.models import Parameter, ssm_backends

        backend = ssm_backends[ACCOUNT_ID][self.region]
        versions = backend._parameters[name]
        versions.append(
            Parameter(  # type: ignore[abstract]  # moto's own loader builds Parameters this way
                account_id=ACCOUNT_ID,
                name=name,
                value=value,
                parameter_type="String",
                description=None,
                allowed_pattern=None,
                keyid=None,
                last_modified_date=datetime.now(UTC),
                version=len(versions) + 1,
                data_type="aws:ec2:image",
            )
        )

    def __enter__(self) -> MotoEC2:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _InheritedSocketServer:
    """moto's WSGI app on an inherited listening socket, with ``ThreadedMotoServer``'s surface.

    ``ThreadedMotoServer`` always binds its own socket; this builds the same server from the
    same moto parts, but over ``fd``, so that whoever created the socket knows the endpoint
    before moto has even been imported.
    """

    def __init__(self, fd: int) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler, fd=fd
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()
