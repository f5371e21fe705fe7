"""Playbook executors on AWS: SSM Run Command, ECS, Lambda and Elastic Load Balancing (v2)."""

from integrations.aws.calls import AwsClients, AwsSettings
from integrations.aws.ecs import EcsExecutor
from integrations.aws.elb import ElbExecutor
from integrations.aws.functions import LambdaExecutor
from integrations.aws.ssm import SsmExecutor

__all__ = [
    "AwsClients",
    "AwsSettings",
    "EcsExecutor",
    "ElbExecutor",
    "LambdaExecutor",
    "SsmExecutor",
]
