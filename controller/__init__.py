"""ecs-job-controller: a level-triggered GitOps controller for batch job runs on AWS ECS."""

__version__ = "0.1.0"
