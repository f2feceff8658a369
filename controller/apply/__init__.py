"""Apply: carry out a Plan through the gateways and the ledger, or print it (dry run)."""
