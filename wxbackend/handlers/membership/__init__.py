"""HTTP for joining, certification, reviews and rosters."""
