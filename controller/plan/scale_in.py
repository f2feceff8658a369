"""Scale-in: give an Auto Scaling group's idle instances back, safely (pure).

The other half of `controller.plan.capacity`: after a burst the group would
stay at its peak size. This plans, per group, which idle instances to
release and how, from the group as observed this pass, the idle clocks in
the ledger, and the pass's other decisions. No boto3, no I/O, no clock.

**Opt-in.** Terminating instances is the most destructive thing the
controller does, so a group is scaled in only while it carries the tag
`ecs-job-controller/scale-in` = the controller's owner (and the pass was not
told `--no-scale-in`). Optional tags tune it: `...scale-in-idle-seconds`
(default 600) and `...scale-in-cooldown-seconds` (default 300), whole
seconds; an unreadable value leaves the group alone and says so.

**Idle.** An instance is idle when its container instance is ACTIVE, its
agent connected, and ECS counts no running and no pending task on it. The
first pass that sees it so starts its idle clock (`MarkIdle`, kept in the
ledger so a restart neither resets nor skips it); any pass that sees a task
there stops it (`ForgetIdle`). The clock is sampled once a pass: a task that
came and went between two passes goes unseen, which only makes an instance
look idle for a little longer than it was.

**A release** takes two passes: `DrainInstance` (the decision is recorded,
then UpdateContainerInstancesState DRAINING, so ECS places nothing new
there); then, on a later pass at least `DRAIN_SETTLE_SECONDS` on and still
empty, `TerminateInstance` (TerminateInstanceInAutoScalingGroup with
ShouldDecrementDesiredCapacity, so the group does not replace it). If a task
landed on it in between — placed just before the drain took effect — or a
run now waits for room in the group, or it became protected, it is set
ACTIVE again (`ReactivateInstance`) with the reason.

**Never**: below MinSize (the desired capacity minus the instances already
draining never drops under it; if MinSize was raised meanwhile, the newest
drains are undone); an instance protected from scale-in (AWS does not stop
TerminateInstanceInAutoScalingGroup for it, so the planner must); more than
`max_per_pass` drains, nor more than `max_per_pass` terminations, per group
and pass; anything while the group is held:

* a run of this owner waits for room in the group (a scale-out is only ever
  for such runs);
* an instance of the group is still launching (desired above live members);
* the cooldown: less than the cooldown since the group's last scale-out —
  this controller's (from the ledger) or anyone's (the newest registration
  of one of its container instances, which is when that scale-out's room
  arrived);
* this pass starts a run in one of the group's clusters (the RunTask may
  need exactly that instance).

Which instance goes first: the one idle longest, then by instance id.

How group members and container instances meet: by EC2 instance id — the
Auto Scaling member's `InstanceId` is the container instance's
`ec2InstanceId` in one of the clusters the group's runs name (see
`controller.observe.capacity`).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from controller.model.capacity import GroupReport, GroupState, IdleInstance, InstanceCapacity
from controller.model.identity import (
    TAG_SCALE_IN,
    TAG_SCALE_IN_COOLDOWN_SECONDS,
    TAG_SCALE_IN_IDLE_SECONDS,
)
from controller.model.run import LedgerView
from controller.plan.actions import (
    DrainInstance,
    ForgetIdle,
    MarkIdle,
    ReactivateInstance,
    ScaleInAction,
    TerminateInstance,
)

#: How long an instance must stay empty before it is released (tag overrides).
DEFAULT_IDLE_SECONDS = 600
#: How long after a scale-out of the group nothing is released (tag overrides).
DEFAULT_COOLDOWN_SECONDS = 300
#: `--max-scale-in-per-pass`' default: drains (and terminations) per group and pass.
DEFAULT_MAX_PER_PASS = 1
#: The least time between an instance's drain and its termination. ECS's
#: task counts of an instance lag a placement by a moment; a task placed
#: just before the drain took effect shows up within it.
DRAIN_SETTLE_SECONDS = 30


@dataclass(frozen=True)
class ScaleInSettings:
    """The controller-wide knobs (`--no-scale-in`, `--max-scale-in-per-pass`)."""

    enabled: bool = True
    max_per_pass: int = DEFAULT_MAX_PER_PASS


@dataclass(frozen=True)
class ScaleInPlan:
    """What scale-in does this pass, and what it tells `status`."""

    actions: tuple[ScaleInAction, ...] = ()
    reports: tuple[GroupReport, ...] = ()
    #: instances set ACTIVE again this pass, by group: capacity planning may count them usable
    reactivated: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: when a release next becomes due without any outside change
    wake_at: datetime | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class PassContext:
    """What the rest of this pass decided that scale-in must respect."""

    #: groups some run of this owner waits on (a scale-out is only ever for those)
    waiting: Set[str] = frozenset()
    #: clusters in which this pass sends a RunTask
    starting_in: Set[str] = frozenset()


def scale_in_groups(
    groups: Mapping[str, GroupState], ledger: LedgerView, owner: str, settings: ScaleInSettings
) -> list[str]:
    """The groups scale-in looks at: opted in (when enabled), or holding an idle clock of ours."""
    names = {m.group for m in ledger.idle_instances.values()}
    if settings.enabled:
        names.update(n for n, g in groups.items() if g.tags.get(TAG_SCALE_IN) == owner)
    return sorted(names)


def plan_scale_in(
    groups: Mapping[str, GroupState],
    ledger: LedgerView,
    now: datetime,
    owner: str,
    settings: ScaleInSettings,
    context: PassContext,
) -> ScaleInPlan:
    """Every group's scale-in decision this pass (see the module docstring)."""
    actions: list[ScaleInAction] = []
    reports: list[GroupReport] = []
    reactivated: dict[str, frozenset[str]] = {}
    warnings: list[str] = []
    wakes: list[datetime] = []
    for name in scale_in_groups(groups, ledger, owner, settings):
        marks = {m.instance_id: m for m in ledger.idle_instances.values() if m.group == name}
        state = groups.get(name)
        if state is None:
            # Not found in Auto Scaling: its instances are gone with it.
            actions.extend(
                ForgetIdle(name, i, f"Auto Scaling group {name} not found") for i in sorted(marks)
            )
            continue
        if not settings.enabled or state.tags.get(TAG_SCALE_IN) != owner:
            why = (
                "scale-in is off (--no-scale-in)"
                if not settings.enabled
                else f"the group no longer carries {TAG_SCALE_IN}={owner}"
            )
            actions.extend(_stand_down(state, marks, why))
            continue
        group = _GroupPlan(state, marks, ledger.scale_outs.get(name), now, settings, context)
        group.plan()
        actions.extend(group.actions)
        reports.append(group.report())
        warnings.extend(group.warnings)
        if group.reactivated:
            reactivated[name] = frozenset(group.reactivated)
        if group.wake_at is not None:
            wakes.append(group.wake_at)
    future = [w for w in wakes if w > now]
    return ScaleInPlan(
        actions=tuple(actions),
        reports=tuple(reports),
        reactivated=reactivated,
        wake_at=min(future) if future else None,
        warnings=tuple(warnings),
    )


def _stand_down(
    state: GroupState, marks: Mapping[str, IdleInstance], why: str
) -> list[ScaleInAction]:
    """Undo what scale-in started on a group it must leave alone now."""
    by_id = {i.instance_id: i for i in state.instances}
    undone: list[ScaleInAction] = []
    for instance_id, mark in sorted(marks.items()):
        instance = by_id.get(instance_id)
        if mark.draining_since is not None and instance is not None and instance.draining:
            undone.append(_reactivate(state.name, instance, why))
        else:
            undone.append(ForgetIdle(state.name, instance_id, why))
    return undone


def _reactivate(group: str, instance: InstanceCapacity, why: str) -> ReactivateInstance:
    return ReactivateInstance(group, instance.instance_id, instance.cluster, instance.arn, why)


def _seconds_tag(tags: Mapping[str, str], key: str, default: int) -> int | None:
    """A whole number of seconds from a tag (default when absent); None when unreadable."""
    text = tags.get(key)
    if text is None:
        return default
    text = text.strip()
    return int(text) if text.isdigit() else None


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _tasks(instance: InstanceCapacity) -> str:
    parts = []
    if instance.running_tasks:
        parts.append(f"{instance.running_tasks} running")
    if instance.pending_tasks:
        parts.append(f"{instance.pending_tasks} pending")
    return " and ".join(parts) + " task(s)" if parts else "its agent is not connected"


class _GroupPlan:
    """One opted-in group's decision; `plan()` fills `actions` and what the report needs."""

    def __init__(
        self,
        state: GroupState,
        marks: Mapping[str, IdleInstance],
        last_scale_out: datetime | None,
        now: datetime,
        settings: ScaleInSettings,
        context: PassContext,
    ) -> None:
        self.state = state
        self.marks = marks
        self.last_scale_out = last_scale_out
        self.now = now
        self.settings = settings
        self.context = context
        self.actions: list[ScaleInAction] = []
        self.warnings: list[str] = []
        self.reactivated: set[str] = set()
        self.wake_at: datetime | None = None
        self.idle: list[str] = []
        self.draining: list[str] = []
        self.next_release: str | None = None
        self.next_release_at: datetime | None = None
        self._next_what = ""
        self.message = ""

    # -- the decision -------------------------------------------------------------

    def plan(self) -> None:
        state = self.state
        idle_seconds = _seconds_tag(state.tags, TAG_SCALE_IN_IDLE_SECONDS, DEFAULT_IDLE_SECONDS)
        cooldown = _seconds_tag(state.tags, TAG_SCALE_IN_COOLDOWN_SECONDS, DEFAULT_COOLDOWN_SECONDS)
        if idle_seconds is None or cooldown is None:
            key = (
                TAG_SCALE_IN_IDLE_SECONDS if idle_seconds is None else TAG_SCALE_IN_COOLDOWN_SECONDS
            )
            self.message = (
                f"tag {key}={state.tags.get(key)!r} is not a whole number of seconds:"
                " the group is not scaled in"
            )
            self.warnings.append(f"Auto Scaling group {state.name}: {self.message}")
            # Nothing new starts; what was started is undone.
            self.actions.extend(_stand_down(state, self.marks, self.message))
            return
        if not state.instances_read:
            self.message = f"no instance above MinSize {state.min_size}: nothing to release"
            # Unwatched, a clock would claim idleness nobody saw: it starts afresh later.
            self.actions.extend(
                ForgetIdle(state.name, i, f"at MinSize {state.min_size}: not watched")
                for i in sorted(self.marks)
            )
            return
        by_id = {i.instance_id: i for i in state.instances}
        for instance_id in sorted(set(self.marks) - set(by_id)):
            self.actions.append(
                ForgetIdle(state.name, instance_id, "no longer an instance of the group")
            )

        holds = self._holds(cooldown)
        releasing: list[tuple[InstanceCapacity, IdleInstance]] = []  # ours, draining, stays so
        redrain: list[tuple[InstanceCapacity, IdleInstance]] = []
        candidates: list[tuple[InstanceCapacity, IdleInstance]] = []  # idle, not yet drained
        waiting = state.name in self.context.waiting
        for instance in sorted(state.instances, key=lambda i: i.instance_id):
            mark = self.marks.get(instance.instance_id)
            if mark is not None and mark.draining_since is not None:
                why = self._undrain_reason(instance, waiting)
                if why is not None:
                    self._undo(instance, why)
                elif not instance.draining:
                    # Decided, but the drain did not land (or someone undid
                    # it): the decision stands; send it again.
                    redrain.append((instance, mark))
                else:
                    releasing.append((instance, mark))
                continue
            empty_and_active = instance.empty and instance.active
            if mark is not None and not empty_and_active:
                why = "busy again: " + _tasks(instance) if instance.active else "no longer ACTIVE"
                self.actions.append(ForgetIdle(state.name, instance.instance_id, why))
                continue
            if not empty_and_active:
                continue
            if mark is None:
                mark = IdleInstance(instance.instance_id, state.name, instance.cluster, self.now)
                self.actions.append(MarkIdle(mark, "no running or pending task"))
            candidates.append((instance, mark))

        # MinSize: the instances that stay are the desired capacity minus
        # those on their way out; if MinSize rose, the newest drains are undone.
        staying = state.desired - len(releasing) - len(redrain)
        out = sorted([*releasing, *redrain], key=lambda p: (p[1].draining_since, p[0].instance_id))
        while staying < state.min_size and out:
            instance, _ = out.pop()
            self._undo(instance, f"MinSize is {state.min_size}")
            staying += 1
        releasing = [p for p in releasing if p in out]
        redrain = [p for p in redrain if p in out]
        for instance, mark in redrain:
            self._drain(instance, mark, "the drain decided before is sent again")

        self.idle = sorted(
            [i.instance_id for i, _ in candidates] + [i.instance_id for i, _ in releasing]
        )
        self.draining = sorted(i.instance_id for i, _ in [*releasing, *redrain])
        self._release(holds, releasing, candidates, staying, idle_seconds)

    def _holds(self, cooldown: int) -> list[str]:
        """Why nothing may be released from the group this pass (empty: nothing holds it)."""
        state, context = self.state, self.context
        holds = []
        if state.name in context.waiting:
            holds.append("runs wait for room in the group")
        if state.launching or state.desired > state.live:
            holds.append("an instance of the group is still launching")
        started = [i.registered_at for i in state.instances if i.registered_at is not None]
        if self.last_scale_out is not None:
            started.append(self.last_scale_out)
        if started:
            until = max(started) + timedelta(seconds=cooldown)
            if self.now < until:
                holds.append(f"cooldown after a scale-out until {_iso(until)}")
                self._wake(until)
        clusters = {i.cluster for i in state.instances}
        if clusters & set(context.starting_in):
            holds.append("a run starts in its cluster this pass")
        return holds

    def _undrain_reason(self, instance: InstanceCapacity, waiting: bool) -> str | None:
        """Why a drained instance must go back to ACTIVE, or None."""
        if instance.running_tasks or instance.pending_tasks:
            return f"{_tasks(instance)} placed on it while it drained"
        if instance.protected:
            return "it is protected from scale-in"
        if waiting:
            return "runs wait for room in the group"
        return None

    def _undo(self, instance: InstanceCapacity, why: str) -> None:
        if instance.draining:
            self.actions.append(_reactivate(self.state.name, instance, why))
            self.reactivated.add(instance.instance_id)
        else:
            self.actions.append(ForgetIdle(self.state.name, instance.instance_id, why))

    def _drain(self, instance: InstanceCapacity, mark: IdleInstance, why: str) -> None:
        self.actions.append(
            DrainInstance(
                self.state.name,
                instance.instance_id,
                instance.cluster,
                instance.arn,
                replace(mark, draining_since=self.now),
                why,
            )
        )

    def _wake(self, at: datetime) -> None:
        if at > self.now and (self.wake_at is None or at < self.wake_at):
            self.wake_at = at

    def _release(
        self,
        holds: list[str],
        releasing: list[tuple[InstanceCapacity, IdleInstance]],
        candidates: list[tuple[InstanceCapacity, IdleInstance]],
        staying: int,
        idle_seconds: int,
    ) -> None:
        state, now, limit = self.state, self.now, self.settings.max_per_pass
        held = "; ".join(holds)
        # Terminations: drained on an earlier pass, still empty, settled.
        releasing.sort(key=lambda p: (p[1].draining_since or now, p[0].instance_id))
        terminated = 0
        for instance, mark in releasing:
            settled = (mark.draining_since or now) + timedelta(seconds=DRAIN_SETTLE_SECONDS)
            if holds or terminated >= limit or settled > now:
                if settled > now:
                    self._wake(settled)
                self._note(instance.instance_id, max(settled, now), "terminate it once drained")
                continue
            self.actions.append(
                TerminateInstance(
                    state.name,
                    instance.instance_id,
                    instance.cluster,
                    instance.arn,
                    f"drained since {_iso(mark.draining_since or now)} and still empty",
                )
            )
            terminated += 1
            self._note(instance.instance_id, now, "terminated this pass")
        # Drains: idle long enough, unprotected, above MinSize.
        releasable = [(i, m) for i, m in candidates if not i.protected]
        releasable.sort(key=lambda p: (p[1].idle_since, p[0].instance_id))
        drained = 0
        for instance, mark in releasable:
            due = mark.idle_since + timedelta(seconds=idle_seconds)
            if staying - 1 < state.min_size:
                break
            if holds or drained >= limit or due > now:
                self._wake(due)
                self._note(instance.instance_id, max(due, now), "drain it when idle long enough")
                continue
            self._drain(instance, mark, f"idle since {_iso(mark.idle_since)} ({idle_seconds}s)")
            drained += 1
            staying -= 1
            self._note(instance.instance_id, now, "drained this pass; terminated on a later pass")
        protected = len(candidates) - len(releasable)
        self.message = self._summary(held, terminated, drained, protected, releasable, staying)

    def _note(self, instance_id: str, at: datetime, what: str) -> None:
        """Keep the earliest planned release for the report."""
        if self.next_release_at is None or at < self.next_release_at:
            self.next_release, self.next_release_at = instance_id, at
            self._next_what = what

    def _summary(
        self,
        held: str,
        terminated: int,
        drained: int,
        protected: int,
        releasable: list[tuple[InstanceCapacity, IdleInstance]],
        staying: int,
    ) -> str:
        parts = []
        if terminated:
            parts.append(f"terminating {terminated}")
        if drained:
            parts.append(f"draining {drained}")
        if held:
            parts.append(f"held: {held}")
        if protected:
            parts.append(f"{protected} idle instance(s) protected from scale-in")
        if releasable and staying - 1 < self.state.min_size and not self.draining:
            parts.append(f"at MinSize {self.state.min_size}")
        if self.next_release is not None and not terminated and not drained:
            parts.append(f"next: {self.next_release}: {self._next_what}")
        if not parts:
            parts.append("no idle instance")
        return "; ".join(parts)

    def report(self) -> GroupReport:
        state = self.state
        return GroupReport(
            name=state.name,
            min_size=state.min_size,
            max_size=state.max_size,
            desired=state.desired,
            instances=state.live,
            idle=tuple(self.idle),
            draining=tuple(self.draining),
            next_release=self.next_release,
            next_release_at=self.next_release_at,
            message=self.message,
        )
