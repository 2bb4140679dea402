"""Union activities and inclusive services: what a union offers, who may take part, how places
and units are given out (first come, lottery, review), held, confirmed, redeemed and checked in."""
