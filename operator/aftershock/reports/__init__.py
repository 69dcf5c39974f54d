"""Reports for people: the failure-mode matrix, recommendations and the chaos-scenario planner (pure: no I/O)."""
