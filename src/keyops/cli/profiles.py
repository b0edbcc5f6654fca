"""Where the client commands find their server and token: flags, variables, profiles.

``keyops login`` stores a server's URL and token as a named profile in
``$XDG_CONFIG_HOME/keyops/config.json`` (``~/.config/keyops/config.json`` without it),
the directory mode 0700 and the file 0600, written to a temporary file and renamed so
that a crash never leaves half a file. ``resolve`` is the one place that decides which
server and token a command uses: ``--url``/``--token`` (or ``KEYOPS_URL``/
``KEYOPS_TOKEN``, which Typer reads into the same options) over the stored profile.

A profile's token is only ever sent to that profile's URL: with another URL given by a
flag or variable, the stored token is not used (a mistyped ``KEYOPS_URL`` must not hand
the token to some other host).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from keyops.cli.http import fail

__all__ = [
    "DEFAULT_PROFILE",
    "ProfileOption",
    "Stored",
    "Target",
    "config_path",
    "load",
    "remove",
    "resolve",
    "save",
]

DEFAULT_PROFILE = "default"

ProfileOption = Annotated[
    str,
    typer.Option(
        "--profile",
        envvar="KEYOPS_PROFILE",
        help="The stored login to use (see keyops login).",
        show_default=True,
    ),
]


@dataclass(frozen=True)
class Stored:
    """One profile as stored: the server, its token, and when that token expires
    (``None``: not known, as for a personal token given with ``--token``)."""

    url: str
    token: str
    expires_at: str | None = None


@dataclass(frozen=True)
class Target:
    """The server and token a command talks to, and the profile whose token it is
    (``None`` when a flag or variable gave the token)."""

    url: str
    token: str
    profile: str | None
    expires_at: str | None = None


def config_path() -> Path:
    """``$XDG_CONFIG_HOME/keyops/config.json``, else ``~/.config/keyops/config.json``."""
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "keyops" / "config.json"


def _read() -> dict[str, Any]:
    path = config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"profiles": {}}
    except OSError as exc:
        fail(f"can not read {path}: {exc.strerror or type(exc).__name__}")
    try:
        data = json.loads(text)
    except ValueError:
        fail(f"{path} is not valid JSON: fix or delete it, then run keyops login again")
    if not isinstance(data, dict) or not isinstance(data.get("profiles", {}), dict):
        fail(f"{path} is not a keyops config file: fix or delete it")
    data.setdefault("profiles", {})
    return data


def _write(data: dict[str, Any]) -> None:
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkdir's mode is masked by the umask and ignored for an existing directory.
    os.chmod(path.parent, 0o700)
    fd, temporary = tempfile.mkstemp(prefix=".config-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load(profile: str) -> Stored | None:
    """The stored profile, or ``None``."""
    entry = _read()["profiles"].get(profile)
    if not isinstance(entry, dict) or not entry.get("url") or not entry.get("token"):
        return None
    return Stored(str(entry["url"]), str(entry["token"]), entry.get("expiresAt"))


def save(profile: str, stored: Stored) -> Path:
    """Store (or replace) a profile; the config file's path."""
    data = _read()
    entry: dict[str, str] = {"url": stored.url, "token": stored.token}
    if stored.expires_at is not None:
        entry["expiresAt"] = stored.expires_at
    data["profiles"][profile] = entry
    _write(data)
    return config_path()


def remove(profile: str) -> bool:
    """Forget a profile; whether there was one."""
    data = _read()
    if profile not in data["profiles"]:
        return False
    del data["profiles"][profile]
    _write(data)
    return True


def _same_server(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def resolve(
    url: str | None, token: str | None, profile: str = DEFAULT_PROFILE, *, missing_code: int = 1
) -> Target:
    """The server and token: ``url``/``token`` (flags or ``KEYOPS_URL``/``KEYOPS_TOKEN``)
    first, the stored ``profile`` for what they leave out. Exits ``missing_code`` with
    one line saying what to give when neither has a server or a token."""
    stored = load(profile) if not (url and token) else None
    if stored is not None and url and not _same_server(url, stored.url):
        stored = None
    server = url or (stored.url if stored else None)
    bearer = token or (stored.token if stored else None)
    if not server or not bearer:
        what = "no server" if not server else "no token"
        fail(
            f"{what}: run keyops login --url URL [--profile NAME], or give --url and --token"
            " (KEYOPS_URL and KEYOPS_TOKEN)",
            missing_code,
        )
    # The login hint of an Unauthorized answer is about the stored token only.
    from_profile = stored is not None and not token
    return Target(
        server.rstrip("/"),
        bearer,
        profile if from_profile else None,
        stored.expires_at if from_profile and stored else None,
    )
