"""A router on which every path answers with and without its trailing slash."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter


def _twin(path: str) -> str:
    return path[:-1] if path.endswith("/") else path + "/"


class SlashAgnosticRouter(APIRouter):
    """Registers each route twice, so neither form of a path is answered by a redirect.

    Redirecting a missing slash (FastAPI's default) drops a multipart body in many
    clients; the documented form is the one shown in the OpenAPI document.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("redirect_slashes", False)
        super().__init__(**kwargs)

    def add_api_route(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().add_api_route(path, endpoint, **kwargs)
        full = self.prefix + path
        if full not in ("", "/"):
            twin_kwargs = {**kwargs, "include_in_schema": False}
            if twin_kwargs.get("operation_id"):
                twin_kwargs["operation_id"] = twin_kwargs["operation_id"] + "_twin"
            super().add_api_route(_twin(path), endpoint, **twin_kwargs)
