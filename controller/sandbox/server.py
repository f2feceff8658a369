"""A local AWS for the demo and the end-to-end tests.

`Sandbox` runs moto's threaded server on 127.0.0.1 and a free port, puts the
fidelity patches (`patches/`), the simulated ECS agent (`agent.py`) and the
Auto Scaling fleet (`fleet.py`) over moto's in-process backends, and
serves every request through `wsgi.SandboxMiddleware` (counting, fault
injection, one lock; with `call_times=True` it also keeps when each call
arrived, for real-time benchmarks). Time comes from the injected Clock only:
tests pass a FakeClock and advance it, the demo a SystemClock.

Like AWS, it can be slow and throttle: `latency` (`SANDBOX_LATENCY_MS`,
`latency.py`) delays every call it serves, outside the lock, so calls in
flight overlap, and `throttle` (`SANDBOX_THROTTLE`, `throttle.py`) gives
calls token buckets that answer ThrottlingException when empty. Each is read
from its environment variable when the constructor is not given it (so
`SANDBOX_LATENCY_MS=150 pytest tests/e2e` or a bench runs against a slow
AWS), and `set_latency` / `set_throttle` change it for one test, until
`reset()` restores the constructor's. `in_flight_peak` counts how many calls
were served at once, so a test proves overlap by counting, not by timing.

The real `controller` CLI talks to it as a subprocess with `subprocess_env()`
(boto3 reads `AWS_ENDPOINT_URL`); tests can also use `client(service)`.

With `enforce_iam=True` every request must be signed by an IAM user's key
and is authorized against that user's policies, as moto's access control
does it (`INITIAL_NO_AUTH_ACTION_COUNT` 0): the sandbox makes an
administrator (`Allow *`) for its own clients and `env()`, and
`create_iam_user` makes a user with one inline policy, whose keys a test
gives the CLI. moto checks the action of every call, and the resource only
for S3 (bucket and key ARNs) and SQS (the queue ARN); every other service
is checked against resource "*", and conditions are not evaluated
(deploy/README.md says what that means for the policy).

moto keeps its state in module-level backends, so one Sandbox runs in a
process at a time; `stop()` (or `reset()`) wipes moto's state and restores
every patched attribute, so sandboxes can follow one another in one process.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, ClassVar

import boto3
from botocore.config import Config
from moto import settings as moto_settings
from moto.autoscaling.models import autoscaling_backends
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.utils import get_service_model
from moto.dynamodb.models import DynamoDBBackend
from moto.ec2.models import ec2_backends
from moto.ecs.models import ecs_backends
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.events.models import events_backends
from moto.iam.models import iam_backends
from moto.logs.models import logs_backends
from moto.moto_api import state_manager
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from controller.clock import Clock, SystemClock
from controller.runtime.ecs_events import event_pattern
from controller.sandbox.agent import SimulatedAgent
from controller.sandbox.ecs_events import EcsEventEmitter
from controller.sandbox.fleet import Fleet, RetiredInstance, WatchedGroup
from controller.sandbox.latency import LATENCY_VARIABLE, InFlight, Latency
from controller.sandbox.patches import (
    ACCOUNT_ID,
    ClientTokens,
    PatchStack,
    patch_atomic_dynamodb_writes,
    patch_container_instance_state,
    patch_describe_tasks,
    patch_desired_capacity_bounds,
    patch_list_tasks,
    patch_placement,
    patch_run_task_response,
    patch_task_lifecycle,
    patch_task_resources,
    patch_terminate_instance,
)
from controller.sandbox.throttle import THROTTLE_VARIABLE, Throttle
from controller.sandbox.wsgi import (
    INTERNAL_MARKER,
    Call,
    FaultInjector,
    Hooks,
    SandboxMiddleware,
    TimedCall,
)

#: Any AMI id works: moto does not validate images unless asked to.
IMAGE_ID = "ami-12c6146b"
#: moto's state-manager name for ECS tasks. "manual" with an unreachable
#: count means moto never moves a task by itself; the agent does.
TASK_MODEL = "ecs::task"
NEVER = 2**62

#: Environment variables that would make a subprocess's boto3 look
#: somewhere other than the sandbox; `subprocess_env()` drops them.
_AWS_OVERRIDES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)


#: The administrator the sandbox makes for itself when it enforces IAM.
ADMIN_USER = "sandbox-admin"
_ADMIN_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


@dataclass(frozen=True)
class IamKeys:
    """An IAM user's access key, as the CLI's environment takes it."""

    user: str
    access_key_id: str
    secret_access_key: str

    def env(self) -> dict[str, str]:
        """AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for a subprocess."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }


class _QuietHandler(MotoRequestHandler):
    """moto's request handler without a log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log nothing: a test makes thousands of requests."""


class _Server(ThreadedMotoServer):
    """moto's threaded server, serving its app through the sandbox middleware."""

    def __init__(self, host: str, port: int, hooks: Hooks) -> None:
        super().__init__(ip_address=host, port=port, verbose=False)
        self._hooks = hooks
        self.failure: BaseException | None = None

    def _server_entry(self) -> None:
        # As ThreadedMotoServer._server_entry, with the middleware around the
        # app; a failure to bind is reported instead of hanging start().
        app = SandboxMiddleware(DomainDispatcherApplication(create_backend_app), self._hooks)
        try:
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=_QuietHandler
            )
        except (OSError, SystemExit) as error:
            # werkzeug reports a busy port by printing and sys.exit(1).
            self.failure = OSError(f"cannot serve on {self._ip_address}:{self._port}: {error!r}")
            self._server_ready_event.set()
            return
        self._server_ready_event.set()
        self._server.serve_forever()


class Sandbox:
    """moto's server on 127.0.0.1 with ECS fidelity patches and a simulated agent."""

    _running: ClassVar[Sandbox | None] = None

    def __init__(
        self,
        clock: Clock,
        region: str = "us-east-1",
        *,
        forget_after_seconds: float = 3600.0,
        host: str = "127.0.0.1",
        port: int = 0,
        tick_seconds: float | None = None,
        latency: str | None = None,
        throttle: str | None = None,
        pause: Callable[[float], None] = time.sleep,
        call_times: bool = False,
        enforce_iam: bool = False,
    ) -> None:
        """Configure a sandbox; `start()` (or `with`) serves it.

        `latency` and `throttle` take the syntax of `SANDBOX_LATENCY_MS` and
        `SANDBOX_THROTTLE` (`latency.py`, `throttle.py`); None reads the
        variable from the environment, "" turns the knob off. `pause` is how
        a call's latency is spent (real time by default; a test may pass a
        wait on an event instead). `enforce_iam`: authorize every request
        with moto's IAM access control (see the module docstring).
        """
        self.clock = clock
        self._latency_spec = _knob(latency, LATENCY_VARIABLE)
        self._throttle_spec = _knob(throttle, THROTTLE_VARIABLE)
        self._default_pause = pause
        # Parsed now, so that a bad value fails here rather than at start().
        self._latency = Latency.parse(self._latency_spec)
        self._throttle = Throttle.parse(self._throttle_spec)
        self._pause = pause
        self._in_flight = InFlight()
        self._throttled: Counter[tuple[str, str]] = Counter()
        #: where the buckets' time starts under a clock other than SystemClock
        self._epoch = clock.now()
        #: real time: tasks and instances move on their own, every this many
        #: seconds, as in ECS (None: only when a request or `tick()` comes,
        #: which is what a FakeClock test wants)
        self.tick_seconds = tick_seconds
        self._ticker: threading.Thread | None = None
        self._ticking = threading.Event()
        self.region = region
        self.forget_after = timedelta(seconds=forget_after_seconds)
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._calls: Counter[tuple[str, str]] = Counter()
        #: with `call_times`: every counted call and when it arrived (`call_times`)
        self._timeline: list[TimedCall] | None = [] if call_times else None
        #: notified whenever a call is counted (`wait_for_calls`)
        self._counted = threading.Condition(self._lock)
        self._faults = FaultInjector()
        self._server: _Server | None = None
        self._patches = PatchStack()
        self._agent: SimulatedAgent | None = None
        self._fleet: Fleet | None = None
        self._events: EcsEventEmitter | None = None
        self._clients: dict[str, Any] = {}
        self.enforce_iam = enforce_iam
        #: the sandbox's own administrator, while IAM is enforced
        self._admin: IamKeys | None = None
        self._saved_auth: tuple[float, int] | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Reset moto, install the patches and serve; returns self."""
        if Sandbox._running is not None:
            raise RuntimeError("another Sandbox is running in this process; stop it first")
        Sandbox._running = self
        try:
            state_manager.set_transition(TASK_MODEL, {"progression": "manual", "times": NEVER})
            with self._lock:
                moto_api_backend.reset()
                self._install()
            hooks = Hooks(
                lock=self._lock,
                calls=self._calls,
                counted=self._counted,
                faults=self._faults,
                before=self.tick,
                after=self._observe,
                reset=self.reset,
                delay=self._delay,
                admit=self._admit,
                in_flight=self._in_flight,
                timeline=self._timeline,
                now=self.clock.now,
            )
            server = _Server(self._host, self._port, hooks)
            server.start()
            if server.failure is not None:
                raise server.failure
            self._server = server
            if self.tick_seconds is not None:
                self._ticking.clear()
                self._ticker = threading.Thread(
                    target=self._tick_forever, args=(self.tick_seconds,), daemon=True
                )
                self._ticker.start()
        except BaseException:
            self._teardown()
            raise
        return self

    def _tick_forever(self, seconds: float) -> None:
        # Real ECS moves tasks whether or not anyone asks; so does this.
        while not self._ticking.wait(seconds):
            self.tick()

    def stop(self) -> None:
        """Stop serving, restore moto's originals and wipe its state."""
        if Sandbox._running is not self:
            return  # never started, or stopped already: moto may belong to another
        self._ticking.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._teardown()

    def reset(self) -> None:
        """Wipe all AWS state, faults and call counts; keep serving on the same port.

        Latency and throttling are the constructor's again, the buckets full.
        """
        with self._lock:
            self._patches.uninstall_all()
            moto_api_backend.reset()
            self._faults.clear()
            self._clear_calls()
            self._latency = Latency.parse(self._latency_spec)
            self._throttle = Throttle.parse(self._throttle_spec)
            self._pause = self._default_pause
            self._install()
        self._in_flight.reset()

    def _install(self) -> None:
        ecs = ecs_backends[ACCOUNT_ID][self.region]
        autoscaling = autoscaling_backends[ACCOUNT_ID][self.region]
        logs = logs_backends[ACCOUNT_ID][self.region]
        self._events = EcsEventEmitter(events_backends[ACCOUNT_ID][self.region])
        self._agent = SimulatedAgent(
            ecs, forget_after=self.forget_after, logs=logs, events=self._events
        )
        self._fleet = Fleet(ecs, autoscaling, self._agent, self._events)
        stack = self._patches
        # Order matters: lifecycle wraps placement, which uses the resources.
        patch_task_resources(stack, ecs)
        patch_placement(stack, ecs)
        patch_task_lifecycle(stack, ecs, self._agent, self.clock)
        patch_run_task_response(stack, EC2ContainerServiceResponse, ClientTokens(), self.clock)
        patch_describe_tasks(stack, EC2ContainerServiceResponse)
        patch_list_tasks(stack, EC2ContainerServiceResponse)
        patch_desired_capacity_bounds(stack, autoscaling)
        patch_terminate_instance(stack, autoscaling)
        patch_container_instance_state(stack, ecs, self._events, self.clock)
        patch_atomic_dynamodb_writes(stack, DynamoDBBackend)
        if self.enforce_iam:
            self._enforce_iam()

    def _enforce_iam(self) -> None:
        # moto's state was just wiped (IAM with it): a new administrator, and
        # from the next request on, every one is authenticated and authorized.
        self._clients.clear()
        self._admin = self._new_user(ADMIN_USER, _ADMIN_POLICY)
        if self._saved_auth is None:
            self._saved_auth = (
                moto_settings.INITIAL_NO_AUTH_ACTION_COUNT,
                ActionAuthenticatorMixin.request_count,
            )
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0

    def _restore_auth(self) -> None:
        if self._saved_auth is not None:
            count, requests = self._saved_auth
            moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = count
            ActionAuthenticatorMixin.request_count = requests
            self._saved_auth = None
        self._admin = None

    def _iam(self) -> Any:
        return iam_backends[ACCOUNT_ID]["aws"]

    def _new_user(self, name: str, policy: str) -> IamKeys:
        iam = self._iam()
        iam.create_user(region_name=self.region, user_name=name)
        iam.put_user_policy(name, "policy", policy)
        key = iam.create_access_key(name)
        return IamKeys(name, key.access_key_id, key.secret_access_key)

    def create_iam_user(self, name: str, policy: Mapping[str, Any]) -> IamKeys:
        """An IAM user whose only permissions are `policy` (inline); its access key."""
        if not self.enforce_iam:
            raise RuntimeError("this sandbox does not enforce IAM (Sandbox(enforce_iam=True))")
        with self._lock:
            return self._new_user(name, json.dumps(policy))

    def set_user_policy(self, name: str, policy: Mapping[str, Any]) -> None:
        """Replace a user's inline policy (effective from the next request)."""
        with self._lock:
            self._iam().put_user_policy(name, "policy", json.dumps(policy))

    def _teardown(self) -> None:
        with self._lock:
            self._restore_auth()
            self._patches.uninstall_all()
            moto_api_backend.reset()
            self._agent = self._fleet = None
            self._events = None
        state_manager.unset_transition(TASK_MODEL)
        self._clients.clear()
        if Sandbox._running is self:
            Sandbox._running = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- talking to it ---------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """http://127.0.0.1:PORT of the running server."""
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """Return the environment variables that point boto3 (and so the CLI) here."""
        access_key, secret = self._credentials()
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            # No surprises from the developer's ~/.aws, nor a slow IMDS probe.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def _credentials(self) -> tuple[str, str]:
        # moto's fake credentials, or the administrator's key under IAM.
        if self._admin is not None:
            return self._admin.access_key_id, self._admin.secret_access_key
        return "testing", "testing"

    def subprocess_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Return `base` (default: os.environ) without other AWS settings, plus `env()`."""
        environment = dict(os.environ if base is None else base)
        for name in list(environment):
            if name in _AWS_OVERRIDES or name.startswith("AWS_ENDPOINT_URL_"):
                del environment[name]
        environment.update(self.env())
        return environment

    def client(self, service: str, *, counted: bool = True) -> Any:
        """Return a boto3 client for `service` on this sandbox.

        Its calls are counted in `calls` and subject to injected faults, like
        the controller's; with `counted=False` they are neither (for test
        helpers that look at the world without disturbing the measurement).
        """
        return self._make_client(service, internal=not counted)

    def _internal(self, service: str) -> Any:
        # The sandbox's own setup calls: not counted, never faulted.
        return self._make_client(service, internal=True)

    def _make_client(self, service: str, *, internal: bool) -> Any:
        key = f"{service}/{internal}"
        if key not in self._clients:
            access_key, secret = self._credentials()
            self._clients[key] = boto3.session.Session().client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret,
                config=Config(user_agent_extra=INTERNAL_MARKER if internal else None),
            )
        return self._clients[key]

    # --- latency and throttling ------------------------------------------------------------

    @property
    def latency(self) -> Latency:
        """The latency calls get now."""
        return self._latency

    @property
    def throttle(self) -> Throttle:
        """The token buckets calls take from now."""
        return self._throttle

    def set_latency(self, spec: str, *, pause: Callable[[float], None] | None = None) -> None:
        """Give calls this `SANDBOX_LATENCY_MS` latency from now on (until `reset()`).

        With `pause`, latency is spent by calling it with the seconds instead
        of sleeping: e.g. a wait on a barrier, which shows that calls overlap
        without depending on how long anything takes.
        """
        latency = Latency.parse(spec)
        with self._lock:
            self._latency = latency
            self._pause = pause if pause is not None else self._default_pause

    def set_throttle(self, spec: str) -> None:
        """Throttle calls with these `SANDBOX_THROTTLE` buckets, full, until `reset()`."""
        throttle = Throttle.parse(spec)
        with self._lock:
            self._throttle = throttle

    def _delay(self, call: Call) -> None:
        # Called by the middleware without the lock: calls in flight overlap.
        latency, pause = self._latency, self._pause
        seconds = latency.seconds(call.service, call.operation)
        if seconds > 0:
            pause(seconds)

    def _admit(self, call: Call) -> bool:
        # Called by the middleware with the lock held: buckets need no lock of their own.
        if self._throttle.admit(call.service, call.operation, self._bucket_time()):
            return True
        self._throttled[(call.service, call.operation)] += 1
        return False

    def _bucket_time(self) -> float:
        # Real monotonic time on a SystemClock (the wall clock may jump); the
        # sandbox's clock otherwise, so a FakeClock test refills by advancing
        # it. Seconds since the sandbox was made keep the floats exact.
        if isinstance(self.clock, SystemClock):
            return time.monotonic()
        return (self.clock.now() - self._epoch).total_seconds()

    @property
    def throttled(self) -> Counter[tuple[str, str]]:
        """How many calls per (service, operation) were throttled (a snapshot; also in `calls`)."""
        with self._lock:
            return Counter(self._throttled)

    def in_flight_peak(self, service: str | None = None, operation: str | None = None) -> int:
        """The most calls of service/operation served at once (of any call, without them).

        Counted from a request's arrival, latency included, to its answer,
        since the last `reset()` or `reset_calls()`; the sandbox's own calls
        are not counted. A test that makes N calls at once and reads N here
        knows they overlapped, whatever the machine's speed.
        """
        if (service is None) != (operation is None):
            raise ValueError("give both service and operation, or neither")
        if service is None or operation is None:
            return self._in_flight.peak()
        return self._in_flight.peak((service, operation))

    @property
    def max_in_flight(self) -> Counter[tuple[str, str]]:
        """`in_flight_peak` of every (service, operation) called (a snapshot)."""
        return self._in_flight.peaks()

    # --- simulation ------------------------------------------------------------------------

    def tick(self) -> None:
        """Let the agent and the fleet catch up with the clock (also done before every request)."""
        with self._lock:
            now = self.clock.now()
            if self._fleet is not None and self._agent is not None:
                self._fleet.tick(now)
                self._agent.tick(now)

    def _observe(self) -> None:
        # After every request: note instances an Auto Scaling call launched.
        if self._fleet is not None:
            self._fleet.observe(self.clock.now())

    # --- setting up the world --------------------------------------------------------------

    def create_cluster(self, name: str) -> str:
        """Create an ECS cluster; its ARN."""
        response = self._internal("ecs").create_cluster(clusterName=name)
        return str(response["cluster"]["clusterArn"])

    def add_container_instances(
        self,
        cluster: str,
        count: int,
        cpu: int = 2048,
        memory: int = 4096,
        *,
        asg_name: str | None = None,
        instance_type: str = "m5.large",
    ) -> list[str]:
        """Launch `count` EC2 instances registered in `cluster` with exactly cpu/memory; their ARNs.

        With `asg_name` they are attached to that Auto Scaling group (which
        raises its desired capacity, as AttachInstances does).
        """
        with self._lock:
            if cluster not in ecs_backends[ACCOUNT_ID][self.region].clusters:
                raise ValueError(f"no ECS cluster {cluster!r} in the sandbox: create it first")
        reservation = self._internal("ec2").run_instances(
            ImageId=IMAGE_ID, MinCount=count, MaxCount=count, InstanceType=instance_type
        )
        instance_ids = [instance["InstanceId"] for instance in reservation["Instances"]]
        with self._lock:
            assert self._fleet is not None
            now = self.clock.now()
            arns = [
                self._fleet.register(
                    cluster, instance_id, cpu=cpu, memory=memory, at=now, group=asg_name
                )
                for instance_id in instance_ids
            ]
        if asg_name is not None:
            self._internal("autoscaling").attach_instances(
                AutoScalingGroupName=asg_name, InstanceIds=instance_ids
            )
        return arns

    def create_auto_scaling_group(
        self,
        name: str,
        cluster: str,
        min_size: int,
        max_size: int,
        desired: int,
        *,
        instance_cpu: int = 2048,
        instance_memory: int = 4096,
        instance_type: str = "m5.large",
        registration_delay_seconds: float = 30,
        tags: Mapping[str, str] | None = None,
        protect_new_instances: bool = False,
    ) -> None:
        """Create a launch template and an Auto Scaling group whose instances join `cluster`.

        Every instance the group launches (now, and after SetDesiredCapacity)
        registers as a container instance with `instance_cpu`/`instance_memory`
        once `registration_delay_seconds` have passed on the sandbox clock.
        `tags` go on the group (e.g. the scale-in opt-in tag);
        `protect_new_instances` sets NewInstancesProtectedFromScaleIn.
        """
        # What a real ECS-optimized AMI reads to join the cluster.
        user_data = f"#!/bin/bash\necho ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config\n"
        self._internal("ec2").create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData={
                "ImageId": IMAGE_ID,
                "InstanceType": instance_type,
                "UserData": base64.b64encode(user_data.encode()).decode(),
            },
        )
        with self._lock:
            assert self._fleet is not None
            self._fleet.watch(
                WatchedGroup(
                    name=name,
                    cluster=cluster,
                    cpu=instance_cpu,
                    memory=instance_memory,
                    registration_delay=timedelta(seconds=registration_delay_seconds),
                )
            )
        self._internal("autoscaling").create_auto_scaling_group(
            AutoScalingGroupName=name,
            MinSize=min_size,
            MaxSize=max_size,
            DesiredCapacity=desired,
            LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
            AvailabilityZones=[f"{self.region}a"],
            NewInstancesProtectedFromScaleIn=protect_new_instances,
            Tags=[
                {
                    "Key": key,
                    "Value": value,
                    "ResourceId": name,
                    "ResourceType": "auto-scaling-group",
                    "PropagateAtLaunch": False,
                }
                for key, value in sorted((tags or {}).items())
            ],
        )

    def create_network(self, subnet_id: str, security_group_id: str) -> None:
        """Make a VPC whose subnet and security group carry exactly these IDs.

        Example manifests name placeholder IDs (`subnet-0a1b2c3d`) that a
        user replaces with real ones; EC2 (and moto) invent IDs at creation,
        so the sandbox creates them and re-files them under the given names.
        awsvpc tasks then get their ENI in that subnet, as on AWS.
        """
        ec2 = self._internal("ec2")
        vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        # Like a default VPC: tasks' ENIs get DNS names (moto needs it, too).
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
        zone = f"{self.region}a"
        made = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.0.0/20", AvailabilityZone=zone)
        group = ec2.create_security_group(
            GroupName=security_group_id, Description="sandbox", VpcId=vpc_id
        )["GroupId"]
        with self._lock:
            backend = ec2_backends[ACCOUNT_ID][self.region]
            subnet = backend.subnets[zone].pop(made["Subnet"]["SubnetId"])
            subnet.id = subnet_id
            backend.subnets[zone][subnet_id] = subnet
            security_group = backend.groups[vpc_id].pop(group)
            security_group.id = security_group_id
            backend.groups[vpc_id][security_group_id] = security_group

    def create_events_queue(self, name: str, clusters: list[str] | None = None) -> str:
        """An SQS queue fed by an EventBridge rule with the documented ECS pattern; its URL.

        The rule is the one README's "Events" section shows
        (`controller.runtime.ecs_events.event_pattern`), limited to the
        ARNs of `clusters` when given; the sandbox's ECS emits its state
        changes to EventBridge, and moto's rule delivers the matching ones.
        """
        sqs = self._internal("sqs")
        url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        cluster_arns = [
            f"arn:aws:ecs:{self.region}:{ACCOUNT_ID}:cluster/{cluster}"
            for cluster in clusters or []
        ]
        events = self._internal("events")
        events.put_rule(Name=name, EventPattern=json.dumps(event_pattern(cluster_arns)))
        events.put_targets(Rule=name, Targets=[{"Id": "controller", "Arn": arn}])
        return url

    def create_notify_topic(self, name: str) -> tuple[str, str]:
        """An SNS topic subscribed by an SQS queue of the same name: (topic ARN, queue URL).

        What a run notification's consumer looks like: `received(queue_url)`
        reads what the controller published (`--notify-sns`, `spec.notify`).
        A name ending .fifo makes both FIFO.
        """
        fifo = name.endswith(".fifo")
        sns, sqs = self._internal("sns"), self._internal("sqs")
        topic_attributes = {"FifoTopic": "true"} if fifo else {}
        topic = str(sns.create_topic(Name=name, Attributes=topic_attributes)["TopicArn"])
        queue_attributes = {"FifoQueue": "true"} if fifo else {}
        url = str(sqs.create_queue(QueueName=name, Attributes=queue_attributes)["QueueUrl"])
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        return topic, url

    def received(self, queue_url: str) -> list[dict[str, Any]]:
        """Every SNS envelope waiting in a notification queue (deleted once read), oldest first."""
        sqs = self._internal("sqs")
        envelopes: list[dict[str, Any]] = []
        while True:
            answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
            messages = answer.get("Messages") or []
            if not messages:
                return envelopes
            for message in messages:
                envelopes.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    @property
    def retired_instances(self) -> list[RetiredInstance]:
        """Every EC2 instance that left a group and ECS so far, with the tasks it still ran."""
        with self._lock:
            return list(self._fleet.retired) if self._fleet is not None else []

    @property
    def events_emitted(self) -> int:
        """How many ECS events the sandbox put on the bus (for rules that exist)."""
        with self._lock:
            return self._events.emitted if self._events is not None else 0

    def create_log_group(self, name: str) -> None:
        """Create a CloudWatch Logs group (tasks with awslogs write to it)."""
        self._internal("logs").create_log_group(logGroupName=name)

    # --- testing aids ----------------------------------------------------------------------

    def inject_fault(
        self,
        service: str = "ecs",
        operation: str = "RunTask",
        code: str = "ThrottlingException",
        times: int = 1,
        *,
        message: str = "Rate exceeded (injected by the sandbox)",
        status: int = 400,
        executed: bool = False,
        path: str | None = None,
    ) -> None:
        """Make the next `times` calls of service/operation fail with AWS error `code`.

        With `executed` each call is carried out first and only its answer is
        replaced by the error: AWS did the work, the caller cannot know it
        (e.g. `inject_fault("ecs", "RegisterTaskDefinition", "ServerException",
        status=500, executed=True)` registers a revision and answers 500).

        With `path` only the calls to that URL path meet the fault (and use
        it up); the others go through. For a REST service the path names the
        resource: S3 is addressed path-style here, so `path="/BUCKET/KEY"`
        fails one object's GetObject (e.g. `inject_fault("s3", "GetObject",
        "AccessDenied", status=403, path="/manifests/jobs/b.yaml")`). The
        JSON and query services (ECS, Auto Scaling, ...) post every call to
        `/`, so a path cannot tell their calls apart.
        """
        # Fail early on a misspelt operation or path rather than never firing.
        get_service_model(service).operation_model(operation)
        if path is not None and not path.startswith("/"):
            raise ValueError(f"a fault's path starts with '/' (S3: /BUCKET/KEY), not {path!r}")
        with self._lock:
            self._faults.add(
                service,
                operation,
                code,
                times=times,
                message=message,
                status=status,
                executed=executed,
                path=path,
            )

    @property
    def calls(self) -> Counter[tuple[str, str]]:
        """How many requests per (service, operation) the server handled (a snapshot)."""
        with self._lock:
            return Counter(self._calls)

    @property
    def call_times(self) -> list[TimedCall]:
        """Every counted call since the last reset, in order, with its arrival time (a snapshot).

        Kept only by a sandbox made with `call_times=True` (a real-time
        benchmark times one call against another: a placement failure's
        RunTask against the SetDesiredCapacity that follows); empty otherwise.
        """
        with self._lock:
            return list(self._timeline or [])

    def reset_calls(self) -> None:
        """Start counting calls (and throttled calls, and peaks in flight) from zero."""
        with self._lock:
            self._clear_calls()
        self._in_flight.reset()

    def _clear_calls(self) -> None:
        self._calls.clear()
        self._throttled.clear()
        if self._timeline is not None:
            self._timeline.clear()

    def wait_for_calls(
        self, service: str, operation: str, count: int = 1, *, timeout: float
    ) -> bool:
        """Wait until `count` calls of service/operation are counted; False after `timeout` s.

        For a test of another process (the CLI): the arrival of a call is an
        event it can wait on, bounded, instead of polling the state the call
        changes (e.g. the first RunTask of a pass: that pass is in flight).
        Counted as `calls` counts them, since the last reset; the wait ends
        once the call has been answered.
        """
        key = (service, operation)
        with self._counted:
            return self._counted.wait_for(lambda: self._calls[key] >= count, timeout)


def _knob(value: str | None, variable: str) -> str:
    """A knob given to the constructor, else its environment variable ("" when unset)."""
    return os.environ.get(variable, "") if value is None else value
