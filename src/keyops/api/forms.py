"""Reading multipart forms with exact errors and bounded memory."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from keyops.api.errors import nul_problem
from keyops.errors import BadRequest, PayloadTooLarge

# A field such as environmentList may be repeated once per value; the request body
# limit, not this count, is what bounds the memory a form takes.
MAX_REPEATED_FIELDS = 1000


def unknown_names(kind: str, unknown: Iterable[str], expected: Iterable[str]) -> BadRequest:
    """The one refusal of names an endpoint does not take (form fields, query parameters),
    so a typo never silently drops a value: it names them and the expected ones."""
    shown = [name if name else "(empty name)" for name in unknown]
    known = ", ".join(expected) or "none"
    return BadRequest(f"Unknown {kind}(s): {', '.join(shown)}. Expected: {known}")


def require_multipart(request: Request) -> None:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "multipart/form-data":
        raise BadRequest(
            f"Content-Type must be multipart/form-data, not {content_type or 'empty'}!"
        )


def file_too_large(field: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{field} is larger than the limit of {limit} bytes!")


async def read_form(
    request: Request, *, allowed: tuple[str, ...], file_field: str, file_limit: int
) -> FormData:
    """Parse a multipart body whose one file may be at most ``file_limit`` bytes.

    Each limit is checked against what it limits: the whole body against the request
    limit (``BodyLimitMiddleware``, before and while it streams), the file part against
    ``file_limit`` (``single_file``). The parser spools files to disk; other parts are
    held in memory, bounded by the request limit.
    """
    require_multipart(request)
    settings = request.app.state.settings
    form = await request.form(
        max_files=2,
        max_fields=len(allowed) + MAX_REPEATED_FIELDS,
        # Starlette's own 1 MiB cap on a text part would refuse, in its own words, a
        # pemEncodedFile sent as text or a long field the request limit allows.
        max_part_size=max(settings.max_request_bytes, file_limit + 1),
    )
    unknown = sorted({k for k in form if k not in allowed})
    if unknown:
        raise unknown_names("form field", unknown, allowed)
    for field, value in form.multi_items():
        # The file's bytes are data, checked by their parser; text is stored as text.
        problem = (
            nul_problem(field, value) if isinstance(value, str) and field != file_field else None
        )
        if problem is not None:
            raise BadRequest(problem)
    return form


def single_text(form: FormData, field: str) -> str | None:
    """A text field given at most once."""
    values = form.getlist(field)
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(f"{field} may be given only once!")
    value = values[0]
    if isinstance(value, UploadFile):
        raise BadRequest(f"{field} must be a text field, not a file!")
    return value


async def single_file(form: FormData, field: str, limit: int) -> bytes | None:
    """The bytes of a file field (or of a text field holding the content), bounded."""
    values = form.getlist(field)
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(f"{field} may be given only once!")
    value = values[0]
    if isinstance(value, str):
        data = value.encode("utf-8")
    else:
        data = await value.read(limit + 1)
    if len(data) > limit:
        raise file_too_large(field, limit)
    return data
