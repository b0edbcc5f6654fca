"""The baseline of the benchmarks: a bare FastAPI app, no database, no auth, no crypto.

It does what any implementation of the measured endpoints must do at least: read the
whole multipart form (file part included) and answer the contract's JSON, or send the
bytes of a certificate list captured from keyops. Started by bench/_support.py with the
uvicorn options ``keyops serve`` uses, so that a ratio against it measures keyops' own
cost on this machine, in this run:

    python bench/_bare_app.py --port P [--workers N] [--list-file answer.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

LIST_FILE_ENV = "KEYOPS_BENCH_BARE_LIST_FILE"
DEPLOYED = "Deployed successfully; no gateway node is connected to this environment"

app = FastAPI()
_list_file = os.environ.get(LIST_FILE_ENV)
_list_body = Path(_list_file).read_bytes() if _list_file else b'{"success":true}'


async def _deployment(request: Request) -> dict[str, Any]:
    form = await request.form()
    pem = form.get("pemEncodedFile")
    data = pem.encode() if isinstance(pem, str) else await pem.read() if pem else b""
    environments = [
        e for value in form.getlist("environmentList") for e in str(value).split(",") if e
    ]
    results = [{"environmentName": e, "success": True, "message": DEPLOYED} for e in environments]
    return {
        "success": bool(data),
        "deploymentResult": {
            "success": True,
            "message": "Deployment completed successfully",
            "environmentResults": results,
        },
    }


@app.get("/apiops/test/healthcheck")
async def healthcheck() -> PlainTextResponse:
    return PlainTextResponse("OK")


@app.post("/apiops/projects/{project}/certificates/")
async def create_certificate(project: str, request: Request) -> dict[str, Any]:
    return await _deployment(request)


@app.put("/apiops/projects/{project}/certificates/{name}/")
async def update_certificate(project: str, name: str, request: Request) -> dict[str, Any]:
    return await _deployment(request)


@app.get("/apiops/projects/{project}/certificates/")
async def list_certificates(project: str) -> Response:
    return Response(_list_body, media_type="application/json")


def uvicorn_flavour() -> dict[str, str]:
    """What uvicorn's "auto" picks in this interpreter, named explicitly."""
    uvloop = importlib.util.find_spec("uvloop") is not None
    httptools = importlib.util.find_spec("httptools") is not None
    return {"loop": "uvloop" if uvloop else "asyncio", "http": "httptools" if httptools else "h11"}


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--list-file", default=None)
    args = parser.parse_args()
    if args.list_file:
        os.environ[LIST_FILE_ENV] = str(Path(args.list_file).resolve())
    # keyops serve: uvicorn.run(app, host, port, log_level=<KEYOPS_LOG_LEVEL>,
    # proxy_headers=False), loop and http left to "auto"; the same here, spelled out.
    uvicorn.run(
        "_bare_app:app",
        app_dir=str(Path(__file__).resolve().parent),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        proxy_headers=False,
        workers=args.workers if args.workers > 1 else None,
        **uvicorn_flavour(),  # type: ignore[arg-type]
    )


if __name__ == "__main__":
    main()
