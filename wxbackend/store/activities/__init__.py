"""SQL for activities and inclusive services: items, campaigns, the places workers claim."""
