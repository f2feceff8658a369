"""Between passes of `controller run`: what to look at in ECS, how often, and what events say.

The loop (`controller.runtime.loop`) asks an `Activity` when to look and
whether a look found a change. This is the production one. After every pass
it derives the `Watch` from the ledger as the pass left it (tasks in flight,
unanswered intents, clusters where runs wait for room with the instance
counts the pass saw); `look` runs `controller.observe.activity.look` over it.

The cadence: every `--active-poll-seconds` (5 by default) while something is
in flight; never while nothing is (an idle loop costs no call between
resyncs); every `EVENTS_SAFETY_POLL_SECONDS` (60) while an `--events-queue`
answers, because then an event says "look now" within a second of the change
and polling is only the safety net. Messages that triggered a look that saw
nothing are deleted at once; the others wait for the pass that follows
(`messages_for_pass`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from controller.aws.ecs import EcsGateway
from controller.aws.ecs_instances import EcsInstanceGateway
from controller.aws.sqs import QueueMessage
from controller.errors import ControllerError
from controller.model.run import LedgerView
from controller.observe.activity import Watch, look, watch_of
from controller.plan.planner import waiting_for_capacity
from controller.runtime.ecs_events import EVENTS_SAFETY_POLL_SECONDS, EventInbox

log = logging.getLogger("controller.run")

#: `--active-poll-seconds`' default.
DEFAULT_ACTIVE_POLL_SECONDS = 5.0


class ActivityWatcher:
    """The loop's Activity: a cheap look at what the ledger says is in flight."""

    def __init__(
        self,
        ecs: EcsGateway,
        ecs_instances: EcsInstanceGateway | None,
        owner: str,
        *,
        poll_seconds: float = DEFAULT_ACTIVE_POLL_SECONDS,
        inbox: EventInbox | None = None,
    ) -> None:
        self._ecs = ecs
        self._ecs_instances = ecs_instances
        self._owner = owner
        self.poll_seconds = poll_seconds
        self.inbox = inbox
        self.watch = Watch()
        #: messages whose look found a change: the next pass acknowledges them
        self._for_pass: list[QueueMessage] = []
        self._unreadable = False

    def update(self, view: LedgerView, instance_counts: Mapping[str, int] | None) -> None:
        """Watch what the ledger holds in flight after a pass (and the instances it counted)."""
        waiting = {
            where[1]
            for record in view.runs.values()
            if (where := waiting_for_capacity(record)) is not None
        }
        counts = {c: n for c, n in (instance_counts or {}).items() if c in waiting}
        self.watch = watch_of(view, counts)

    def next_look_in(self) -> float | None:
        """Seconds until the next look; None while nothing is in flight."""
        if self.watch.empty:
            return None
        if self.inbox is not None and self.inbox.healthy:
            return max(self.poll_seconds, EVENTS_SAFETY_POLL_SECONDS)
        return self.poll_seconds

    def look(self) -> str | None:
        """Look at ECS now: why a pass is needed, or None (unreadable ECS counts as no news).

        A change seen on a look that event messages prompted reads "event: ..."
        ("event: task abc STOPPED"), so the pass's trigger tells an event from the poll.
        """
        taken = self.inbox.take() if self.inbox is not None else []
        try:
            change = (
                None
                if self.watch.empty
                else look(self._ecs, self._ecs_instances, self.watch, self._owner)
            )
        except ControllerError as exc:
            if not self._unreadable:
                log.warning(
                    "looking at ECS between passes failed (the resync still comes): %s", exc
                )
            self._unreadable = True
            change = None
        else:
            self._unreadable = False
        if change is None:
            if self.inbox is not None:
                self.inbox.acknowledge(taken)
            return None
        self._for_pass.extend(taken)
        # The pass's trigger says whether an event or the poll made us look.
        return f"event: {change}" if taken else change

    def messages_for_pass(self) -> list[QueueMessage]:
        """The event messages a pass starting now acts on (acknowledge them after it)."""
        taken, self._for_pass = self._for_pass, []
        if self.inbox is not None:
            taken.extend(self.inbox.take())
        return taken
