"""Response classes and envelopes shared by every router."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi.responses import JSONResponse


class ContractJSONResponse(JSONResponse):
    """JSON with the content type the contract documents."""

    media_type = "application/json;charset=UTF-8"


def result_list(items: Iterable[Mapping[str, Any]], **extra: Any) -> dict[str, Any]:
    """The keys & secrets list envelope: success, resultList and resultCount."""
    rows = list(items)
    return {"success": True, "resultList": rows, "resultCount": len(rows), **extra}


def result(item: Mapping[str, Any]) -> dict[str, Any]:
    """The single-object envelope."""
    return {"success": True, "result": item}
