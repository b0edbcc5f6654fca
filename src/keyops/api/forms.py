"""Reading multipart forms with exact errors and bounded memory."""

from __future__ import annotations

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from keyops.errors import BadRequest, PayloadTooLarge

# Room for the other form fields and the multipart framing around the file.
FORM_OVERHEAD = 64 * 1024
# A field such as environmentList may be repeated once per value; the request body
# limit, not this count, is what bounds the memory a form takes.
MAX_REPEATED_FIELDS = 1000


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

    A declared length beyond the file limit plus framing is refused before a byte is
    read; the parser spools files to disk, so a large file is never held whole.
    """
    require_multipart(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > file_limit + FORM_OVERHEAD:
        raise file_too_large(file_field, file_limit)
    form = await request.form(max_files=2, max_fields=len(allowed) + MAX_REPEATED_FIELDS)
    unknown = sorted({k for k in form if k not in allowed})
    if unknown:
        raise BadRequest(
            f"Unknown form field(s): {', '.join(unknown)}. Expected: {', '.join(allowed)}"
        )
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
