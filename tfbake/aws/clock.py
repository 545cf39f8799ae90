"""Time as AWS tells it: ages of AWS resources are judged on AWS's clock, never the local one.

AWS accepts requests signed by clocks up to 15 minutes off, so a client's clock can be minutes
fast or, with some endpoints, hours slow. Every AWS answer carries the HTTP `Date` of the server
that wrote it; an age is that date minus the resource's own timestamp (LastModifiedDate,
LaunchTime), both read from AWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any


def answered_at(response: Mapping[str, Any]) -> datetime | None:
    """When AWS wrote this answer, to the second; None when the answer carries no date."""
    headers = (response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    date = headers.get("date")
    if not date:
        return None
    try:
        answered = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return None
    # HTTP dates are GMT; one written without a zone (RFC 2822's -0000) is GMT too.
    return answered if answered.tzinfo else answered.replace(tzinfo=timezone.utc)


def age_on_aws_clock(response: Mapping[str, Any], stamp: Any) -> timedelta | None:
    """How old `stamp` (a time AWS recorded) was when AWS wrote `response`; None when either
    is missing. The Date header has whole seconds: the age is exact to a second."""
    now = answered_at(response)
    if now is None or not isinstance(stamp, datetime):
        return None
    return now - stamp
