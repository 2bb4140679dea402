"""Union membership: joining, certification, reviews, member cards, rosters and their import and export."""
