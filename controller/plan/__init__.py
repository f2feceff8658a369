"""Pure planning: from (desired, observed, ledger, now) to a Plan of frozen actions."""
