"""Scale-in (controller.plan.scale_in) as tables: observed group + idle clocks + now -> actions.

No AWS at all. Each row pins one rule: the idle clock, MinSize, protection,
the cooldown, a task landing on a draining instance, the opt-in tag,
`--no-scale-in`, `--max-scale-in-per-pass`, and what holds a group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from controller.model.capacity import GroupState, IdleInstance, InstanceCapacity
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
    describe,
)
from controller.plan.scale_in import (
    DEFAULT_IDLE_SECONDS,
    DRAIN_SETTLE_SECONDS,
    PassContext,
    ScaleInPlan,
    ScaleInSettings,
    plan_scale_in,
)

OWNER = "team"
GROUP = "batch-asg"
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
#: Long after every instance registered: no cooldown unless a row asks for one.
NOW = T0 + timedelta(hours=2)
OPTED = {TAG_SCALE_IN: OWNER}


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def inst(
    instance_id: str,
    *,
    running: int = 0,
    pending: int = 0,
    draining: bool = False,
    protected: bool = False,
    connected: bool = True,
) -> InstanceCapacity:
    return InstanceCapacity(
        instance_id=instance_id,
        remaining_cpu=2048,
        remaining_memory=4096,
        registered_cpu=2048,
        registered_memory=4096,
        active=not draining,
        connected=connected,
        registered_at=T0,
        arn=f"arn:aws:ecs:eu-west-1:123456789012:container-instance/batch/{instance_id}",
        cluster="batch",
        draining=draining,
        running_tasks=running,
        pending_tasks=pending,
        protected=protected,
    )


def group(
    *instances: InstanceCapacity,
    min_size: int = 1,
    desired: int | None = None,
    launching: int = 0,
    tags: Mapping[str, str] = OPTED,
    read: bool = True,
) -> GroupState:
    return GroupState(
        name=GROUP,
        min_size=min_size,
        max_size=10,
        desired=len(instances) + launching if desired is None else desired,
        instances=tuple(instances),
        launching=launching,
        instance_size=(2048, 4096),
        tags=dict(tags),
        instances_read=read,
    )


def idle(instance_id: str, since: float, draining: float | None = None) -> IdleInstance:
    return IdleInstance(
        instance_id,
        GROUP,
        "batch",
        at(since),
        None if draining is None else at(draining),
    )


def plan(
    state: GroupState | None,
    *marks: IdleInstance,
    now: datetime = NOW,
    settings: ScaleInSettings | None = None,
    context: PassContext | None = None,
    scale_outs: Mapping[str, datetime] | None = None,
) -> ScaleInPlan:
    view = LedgerView(
        idle_instances={m.instance_id: m for m in marks}, scale_outs=dict(scale_outs or {})
    )
    return plan_scale_in(
        {} if state is None else {GROUP: state},
        view,
        now,
        OWNER,
        settings or ScaleInSettings(),
        context or PassContext(),
    )


def summary(actions: Sequence[ScaleInAction]) -> list[tuple[str, str]]:
    return [(type(a).__name__, _instance(a)) for a in actions]


def _instance(action: ScaleInAction) -> str:
    return action.instance.instance_id if isinstance(action, MarkIdle) else action.instance_id


IDLE_LONG = -DEFAULT_IDLE_SECONDS - 1


# -- the idle clock ----------------------------------------------------------------


def test_an_empty_instance_starts_its_idle_clock_and_nothing_else() -> None:
    result = plan(group(inst("i-1", running=1), inst("i-2")))
    assert summary(result.actions) == [("MarkIdle", "i-2")]
    [mark] = result.actions
    assert isinstance(mark, MarkIdle)
    assert mark.instance == IdleInstance("i-2", GROUP, "batch", NOW)
    # The loop wakes when the idle period is over.
    assert result.wake_at == at(DEFAULT_IDLE_SECONDS)
    [report] = result.reports
    assert (report.idle, report.next_release, report.next_release_at) == (
        ("i-2",),
        "i-2",
        at(DEFAULT_IDLE_SECONDS),
    )


@pytest.mark.parametrize(
    ("idle_for", "want"),
    [
        (0, []),
        (DEFAULT_IDLE_SECONDS - 1, []),
        (DEFAULT_IDLE_SECONDS, [("DrainInstance", "i-2")]),
        (DEFAULT_IDLE_SECONDS * 10, [("DrainInstance", "i-2")]),
    ],
)
def test_an_instance_is_drained_once_idle_for_the_idle_period(
    idle_for: int, want: list[tuple[str, str]]
) -> None:
    result = plan(group(inst("i-1", running=1), inst("i-2")), idle("i-2", -idle_for))
    assert summary(result.actions) == want


def test_the_idle_period_comes_from_the_group_tag() -> None:
    state = group(
        inst("i-1", running=1), inst("i-2"), tags={**OPTED, TAG_SCALE_IN_IDLE_SECONDS: "60"}
    )
    assert summary(plan(state, idle("i-2", -59)).actions) == []
    assert summary(plan(state, idle("i-2", -60)).actions) == [("DrainInstance", "i-2")]


def test_an_unreadable_tag_leaves_the_group_alone_and_says_so() -> None:
    state = group(inst("i-1"), inst("i-2"), tags={**OPTED, TAG_SCALE_IN_IDLE_SECONDS: "10m"})
    result = plan(state, idle("i-2", IDLE_LONG))
    assert summary(result.actions) == [("ForgetIdle", "i-2")]
    assert "is not a whole number of seconds" in result.warnings[0]


def test_a_task_on_an_idle_instance_stops_its_clock() -> None:
    result = plan(group(inst("i-1", running=1), inst("i-2", pending=1)), idle("i-2", -100))
    [forget] = result.actions
    assert isinstance(forget, ForgetIdle)
    assert (forget.instance_id, forget.reason) == ("i-2", "busy again: 1 pending task(s)")


def test_an_instance_whose_agent_is_disconnected_is_never_idle() -> None:
    result = plan(group(inst("i-1", running=1), inst("i-2", connected=False)))
    assert result.actions == ()


def test_the_clock_survives_a_restart_it_is_the_ledgers() -> None:
    # The same ledger record, whatever process reads it: the drain is due
    # from the first time an instance was seen idle, not from "now".
    state = group(inst("i-1", running=1), inst("i-2"))
    mark = idle("i-2", -DEFAULT_IDLE_SECONDS)
    assert summary(plan(state, mark).actions) == [("DrainInstance", "i-2")]


def test_the_longest_idle_goes_first_and_one_per_pass_by_default() -> None:
    state = group(inst("i-1"), inst("i-2"), inst("i-3"), min_size=0)
    marks = (idle("i-1", IDLE_LONG), idle("i-2", IDLE_LONG - 50), idle("i-3", IDLE_LONG))
    assert summary(plan(state, *marks).actions) == [("DrainInstance", "i-2")]


@pytest.mark.parametrize(("limit", "drains"), [(1, 1), (2, 2), (5, 3)])
def test_max_scale_in_per_pass(limit: int, drains: int) -> None:
    state = group(inst("i-1"), inst("i-2"), inst("i-3"), min_size=0)
    marks = [idle(f"i-{n}", IDLE_LONG) for n in (1, 2, 3)]
    result = plan(state, *marks, settings=ScaleInSettings(max_per_pass=limit))
    assert [type(a).__name__ for a in result.actions] == ["DrainInstance"] * drains


def test_max_per_pass_also_bounds_terminations() -> None:
    state = group(*(inst(f"i-{n}", draining=True) for n in (1, 2, 3)), min_size=0)
    marks = [idle(f"i-{n}", IDLE_LONG, draining=-100) for n in (1, 2, 3)]
    result = plan(state, *marks, settings=ScaleInSettings(max_per_pass=2))
    assert summary(result.actions) == [("TerminateInstance", "i-1"), ("TerminateInstance", "i-2")]


# -- draining, then terminating ------------------------------------------------------


def test_the_drain_records_the_decision_with_the_instance() -> None:
    result = plan(group(inst("i-1", running=1), inst("i-2")), idle("i-2", IDLE_LONG))
    [drain] = result.actions
    assert isinstance(drain, DrainInstance)
    assert drain.record == replace(idle("i-2", IDLE_LONG), draining_since=NOW)
    assert drain.cluster == "batch"
    assert drain.container_instance_arn.endswith("/i-2")
    assert describe(drain).startswith("UpdateContainerInstancesState i-2 of batch-asg DRAINING")


def test_a_drained_instance_still_empty_is_terminated_on_a_later_pass() -> None:
    state = group(inst("i-1", running=1), inst("i-2", draining=True))
    drained_at = -DRAIN_SETTLE_SECONDS
    result = plan(state, idle("i-2", IDLE_LONG, draining=drained_at))
    [terminate] = result.actions
    assert isinstance(terminate, TerminateInstance)
    assert terminate.instance_id == "i-2"
    assert describe(terminate).startswith("TerminateInstanceInAutoScalingGroup i-2 of batch-asg")


def test_never_terminated_in_the_pass_that_drained_it_nor_before_it_settles() -> None:
    state = group(inst("i-1", running=1), inst("i-2", draining=True))
    result = plan(state, idle("i-2", IDLE_LONG, draining=-(DRAIN_SETTLE_SECONDS - 1)))
    assert result.actions == ()
    assert result.wake_at == at(1)


def test_a_task_landing_on_a_draining_instance_sends_it_back_to_active() -> None:
    state = group(inst("i-1", running=2), inst("i-2", running=1, draining=True))
    result = plan(state, idle("i-2", IDLE_LONG, draining=-60))
    [back] = result.actions
    assert isinstance(back, ReactivateInstance)
    assert back.instance_id == "i-2"
    assert back.reason == "1 running task(s) placed on it while it drained"
    assert result.reactivated == {GROUP: frozenset({"i-2"})}


def test_a_run_waiting_for_the_group_sends_a_draining_instance_back() -> None:
    state = group(inst("i-1", running=1), inst("i-2", draining=True))
    result = plan(
        state,
        idle("i-2", IDLE_LONG, draining=-60),
        context=PassContext(waiting=frozenset({GROUP})),
    )
    assert summary(result.actions) == [("ReactivateInstance", "i-2")]


def test_a_drain_that_did_not_land_is_sent_again() -> None:
    # The decision was recorded, then the process died before the ECS call.
    state = group(inst("i-1", running=1), inst("i-2"))
    result = plan(state, idle("i-2", IDLE_LONG, draining=-60))
    assert summary(result.actions) == [("DrainInstance", "i-2")]


def test_a_draining_instance_nobody_recorded_is_not_ours_and_left_alone() -> None:
    result = plan(group(inst("i-1", running=1), inst("i-2", draining=True)))
    assert result.actions == ()


def test_an_instance_gone_from_the_group_is_forgotten() -> None:
    result = plan(group(inst("i-1", running=1)), idle("i-9", -5, draining=-1))
    assert summary(result.actions) == [("ForgetIdle", "i-9")]


# -- MinSize and protection ----------------------------------------------------------


@pytest.mark.parametrize(
    ("min_size", "want"),
    [
        (0, [("DrainInstance", "i-1"), ("DrainInstance", "i-2")]),
        (1, [("DrainInstance", "i-1")]),
        (2, []),
    ],
)
def test_never_below_min_size(min_size: int, want: list[tuple[str, str]]) -> None:
    state = group(inst("i-1"), inst("i-2"), min_size=min_size)
    marks = (idle("i-1", IDLE_LONG - 1), idle("i-2", IDLE_LONG))
    assert summary(plan(state, *marks, settings=ScaleInSettings(max_per_pass=5)).actions) == want


def test_instances_already_draining_count_against_min_size() -> None:
    state = group(inst("i-1", draining=True), inst("i-2"), inst("i-3", running=1), min_size=2)
    # One instance is on its way out already: the other idle one must stay.
    result = plan(state, idle("i-1", IDLE_LONG, draining=-10), idle("i-2", IDLE_LONG))
    assert summary(result.actions) == []


def test_a_raised_min_size_undoes_the_newest_drain() -> None:
    state = group(inst("i-1", draining=True), inst("i-2", draining=True), min_size=1)
    marks = (idle("i-1", IDLE_LONG, draining=-100), idle("i-2", IDLE_LONG, draining=-50))
    result = plan(state, *marks, settings=ScaleInSettings(max_per_pass=5))
    assert summary(result.actions) == [("ReactivateInstance", "i-2"), ("TerminateInstance", "i-1")]


def test_a_protected_instance_is_never_drained() -> None:
    state = group(inst("i-1", running=1), inst("i-2", protected=True), min_size=0)
    result = plan(state, idle("i-2", IDLE_LONG))
    assert result.actions == ()
    assert "protected from scale-in" in result.reports[0].message


def test_a_drained_instance_that_became_protected_goes_back() -> None:
    state = group(inst("i-1", running=1), inst("i-2", draining=True, protected=True))
    result = plan(state, idle("i-2", IDLE_LONG, draining=-60))
    [back] = result.actions
    assert isinstance(back, ReactivateInstance)
    assert back.reason == "it is protected from scale-in"


def test_at_min_size_the_instances_were_not_even_read() -> None:
    result = plan(group(min_size=1, desired=1, read=False))
    assert result.actions == ()
    assert result.reports[0].message == "no instance above MinSize 1: nothing to release"


def test_at_min_size_an_idle_clock_stops_as_nobody_watches_it() -> None:
    # Else, once the group grows again, an instance busy meanwhile would
    # look idle since long ago.
    result = plan(group(min_size=1, desired=1, read=False), idle("i-1", IDLE_LONG))
    assert summary(result.actions) == [("ForgetIdle", "i-1")]


# -- what holds a group ----------------------------------------------------------------


def test_cooldown_after_this_controllers_scale_out() -> None:
    state = group(inst("i-1", running=1), inst("i-2"))
    mark = idle("i-2", IDLE_LONG)
    held = plan(state, mark, scale_outs={GROUP: at(-299)})
    assert summary(held.actions) == []
    assert "cooldown after a scale-out until" in held.reports[0].message
    assert held.wake_at == at(1)
    assert summary(plan(state, mark, scale_outs={GROUP: at(-300)}).actions) == [
        ("DrainInstance", "i-2")
    ]


def test_cooldown_after_anyones_scale_out_from_the_newest_registration() -> None:
    fresh = replace(inst("i-3", running=1), registered_at=at(-100))
    state = group(inst("i-1", running=1), inst("i-2"), fresh)
    assert summary(plan(state, idle("i-2", IDLE_LONG)).actions) == []
    tagged = replace(state, tags={**OPTED, TAG_SCALE_IN_COOLDOWN_SECONDS: "60"})
    assert summary(plan(tagged, idle("i-2", IDLE_LONG)).actions) == [("DrainInstance", "i-2")]


def test_the_cooldown_also_holds_a_termination() -> None:
    state = group(inst("i-1", running=1), inst("i-2", draining=True))
    mark = idle("i-2", IDLE_LONG, draining=-60)
    assert plan(state, mark, scale_outs={GROUP: at(-10)}).actions == ()


@pytest.mark.parametrize(
    ("context", "launching", "hold"),
    [
        (PassContext(waiting=frozenset({GROUP})), 0, "runs wait for room in the group"),
        (PassContext(), 1, "an instance of the group is still launching"),
        (PassContext(starting_in=frozenset({"batch"})), 0, "a run starts in its cluster"),
    ],
)
def test_what_holds_a_release(context: PassContext, launching: int, hold: str) -> None:
    state = group(inst("i-1", running=1), inst("i-2"), launching=launching)
    result = plan(state, idle("i-2", IDLE_LONG), context=context)
    assert result.actions == ()
    assert hold in result.reports[0].message


def test_a_run_starting_in_another_cluster_holds_nothing() -> None:
    state = group(inst("i-1", running=1), inst("i-2"))
    result = plan(
        state, idle("i-2", IDLE_LONG), context=PassContext(starting_in=frozenset({"etl"}))
    )
    assert summary(result.actions) == [("DrainInstance", "i-2")]


# -- the opt-in -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "tags", [{}, {TAG_SCALE_IN: "someone-else"}, {TAG_SCALE_IN: ""}], ids=["none", "other", "empty"]
)
def test_a_group_without_this_owners_tag_is_never_scaled_in(tags: dict[str, str]) -> None:
    state = group(inst("i-1"), inst("i-2"), min_size=0, tags=tags)
    result = plan(state)
    assert result.actions == ()
    assert result.reports == ()


def test_a_group_that_lost_the_tag_gets_its_drained_instances_back() -> None:
    state = group(inst("i-1", draining=True), inst("i-2"), min_size=0, tags={})
    result = plan(state, idle("i-1", IDLE_LONG, draining=-60), idle("i-2", -5))
    assert summary(result.actions) == [("ReactivateInstance", "i-1"), ("ForgetIdle", "i-2")]
    reactivate = result.actions[0]
    assert isinstance(reactivate, ReactivateInstance)
    assert reactivate.reason == f"the group no longer carries {TAG_SCALE_IN}={OWNER}"


def test_no_scale_in_plans_nothing_new_and_undoes_drains() -> None:
    state = group(inst("i-1", draining=True), inst("i-2"), inst("i-3"), min_size=0)
    off = ScaleInSettings(enabled=False)
    assert plan(state, settings=off).actions == ()
    result = plan(state, idle("i-1", IDLE_LONG, draining=-60), settings=off)
    [back] = result.actions
    assert isinstance(back, ReactivateInstance)
    assert back.reason == "scale-in is off (--no-scale-in)"


def test_a_group_that_is_gone_forgets_its_clocks() -> None:
    result = plan(None, idle("i-1", -5))
    assert summary(result.actions) == [("ForgetIdle", "i-1")]
