"""HTTP for activities and inclusive services: the cadre API and the worker's pages and API."""
