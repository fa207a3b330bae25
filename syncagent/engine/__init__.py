"""One sync run of one pair: scan, plan (pure), execute, state."""
