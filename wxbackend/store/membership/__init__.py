"""SQL for the union tree, members and rosters."""
