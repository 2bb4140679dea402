"""Information reports (信息报送): work information a union sends to the union above.

:mod:`.process` holds the review flow on the work-item engine and the points rules,
:mod:`.reports` the service (pictures, submitting, reviewing, passing up, reading) and
:mod:`.rankings` the points and counts per period for the unions below a viewer.
"""
