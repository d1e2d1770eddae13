"""Designate v2 limits: GET /v2/limits — the acting project's quotas (services/policy.py) and the
fixed bounds of zone and recordset fields, under Designate's keys."""

from __future__ import annotations

from aiohttp import web

from ..services import policy
from .common import DATABASE, ctx, json_response
from .designate import MAX_LIMIT

routes = web.RouteTableDef()

MIN_TTL = 1  # the smallest TTL a zone or recordset may be given (admin/zones.py, services/recordsets.py)
MAX_NAME_LENGTH = 254  # the longest zone or recordset name taken, trailing dot included (services/recordsets.py)


@routes.get("/v2/limits")
async def limits(request: web.Request) -> web.Response:
    """The limits the acting project works under: max_zones, max_zone_recordsets,
    max_zone_records, max_recordset_records (its quotas; -1 is unlimited), min_ttl,
    max_zone_name_length, max_recordset_name_length and max_page_limit."""
    c = ctx(request)
    q = await policy.get_quotas(request.app[DATABASE].pool, c.acting_project)
    return json_response({
        "max_zones": q["zones"], "max_zone_recordsets": q["zone_recordsets"], "max_zone_records": q["zone_records"],
        "max_recordset_records": q["recordset_records"], "min_ttl": MIN_TTL, "max_zone_name_length": MAX_NAME_LENGTH,
        "max_recordset_name_length": MAX_NAME_LENGTH, "max_page_limit": MAX_LIMIT,
    })  # fmt: skip
