"""The driver output: the file layout, the atomic writer, and the files driver.

The state is built the way a node builds it (``parse_snapshot`` + ``build_state`` on a
snapshot of real material: PKCS#12 made by ``openssl pkcs12``, certificates made with
pyca/cryptography, keyops JWKs); the files are read back with the standard library's
``ssl`` and with ``openssl``. The files driver runs real shell commands.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import stat
import threading
from pathlib import Path

import pytest

from keyops.crypto.jwk import PRIVATE_MEMBERS
from keyops.gateway.drivers.base import Change, DriverError
from keyops.gateway.drivers.files import FilesDriver
from keyops.gateway.output import (
    MANIFEST_FILE,
    OutputError,
    OutputFile,
    OutputWriter,
    pem_certificate,
    render,
)
from keyops.gateway.snapshot import (
    AppliedState,
    DeployedCertificate,
    DeployedKeystore,
    KeyEntry,
    build_state,
    parse_snapshot,
)
from keyops.secrets import Secret
from tests.crypto import certs
from tests.gateway import test_node
from tests.gateway.test_node import ENV, Material, snapshot

# The same real material as the node tests (module-scoped fixtures of that module).
material = test_node.material
_openssl = test_node._openssl


def state_of(document: dict[str, object]) -> AppliedState:
    return build_state(parse_snapshot(json.dumps(document).encode()), ENV, open_keystores=True)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def files_of(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# --- rendering ------------------------------------------------------------------------------


def test_render_lays_out_every_keystore_entry_the_truststore_certificates_and_jwks(
    material: Material, tmp_path: Path
) -> None:
    m = material
    files = render(state_of(snapshot(m, 1)))
    assert set(files) == {
        "tls/admin/gw/server.pem",
        "tls/admin/gw/server.crt",
        "tls/admin/gw/server.key",
        "truststore.pem",
        "certificates/other/ca-b.pem",
        "certificates/admin/trusted-0.pem",
        "jwks.json",
    }
    assert {p for p, f in files.items() if f.private} == {
        "tls/admin/gw/server.pem",
        "tls/admin/gw/server.key",
    }
    chain = m.server.pem + m.server_ca.pem
    assert files["tls/admin/gw/server.crt"].content == chain
    assert files["tls/admin/gw/server.pem"].content.startswith(chain)
    assert files["tls/admin/gw/server.pem"].content.endswith(
        files["tls/admin/gw/server.key"].content
    )
    assert b"BEGIN PRIVATE KEY" in files["tls/admin/gw/server.key"].content
    # The truststore: the admin project's certificates only; every certificate on its own.
    assert files["truststore.pem"].content == m.client_ca_a.pem
    assert files["certificates/other/ca-b.pem"].content == m.client_ca_b.pem
    jwks = json.loads(files["jwks.json"].content)
    assert {k["kid"] for k in jwks["keys"]} and all(
        not set(k) & (PRIVATE_MEMBERS | {"k"}) for k in jwks["keys"]
    )

    # What a TLS server loads: the .crt/.key pair and the combined .pem both work.
    for path, item in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(item.content)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(
        tmp_path / "tls/admin/gw/server.crt", tmp_path / "tls/admin/gw/server.key"
    )
    context.load_cert_chain(tmp_path / "tls/admin/gw/server.pem")
    context.load_verify_locations(tmp_path / "truststore.pem")
    modulus = certs.openssl("pkey", "-in", str(tmp_path / "tls/admin/gw/server.key"), "-pubout")
    assert b"PUBLIC KEY" in modulus


def test_render_without_keystores_opened_has_no_tls_files(material: Material) -> None:
    state = build_state(parse_snapshot(json.dumps(snapshot(material, 1)).encode()), ENV)
    assert not [p for p in render(state) if p.startswith("tls/")]


@pytest.mark.parametrize("alias", ["..", ".", "a/b", "with space", ""])
def test_render_refuses_names_that_are_not_safe_path_components(
    material: Material, alias: str
) -> None:
    base = state_of(snapshot(material, 1))
    entry = base.keystores[0].entries[0]
    bad = AppliedState(
        environment=base.environment,
        revision=1,
        identity=None,
        truststore=(),
        jwks_json=b'{"keys":[]}',
        jwk_kids=(),
        keystores=(
            DeployedKeystore(
                "admin",
                "gw",
                (KeyEntry(alias, entry.chain_der, entry.private_key_der),),
            ),
        ),
    )
    with pytest.raises(OutputError, match="can not be used in a file name"):
        render(bad)
    cert = AppliedState(
        environment=base.environment,
        revision=1,
        identity=None,
        truststore=(),
        jwks_json=b"{}",
        jwk_kids=(),
        certificates=(DeployedCertificate("..", "x", material.client_ca_a.der),),
    )
    with pytest.raises(OutputError, match="project name"):
        render(cert)


def test_render_is_empty_but_present_for_an_empty_environment() -> None:
    empty = AppliedState(ENV, 0, None, (), b'{"keys":[]}', ())
    assert render(empty) == {
        "truststore.pem": OutputFile(b""),
        "jwks.json": OutputFile(b'{"keys":[]}'),
    }


# --- writing ---------------------------------------------------------------------------------


def test_writer_modes_changes_removal_and_manifest_across_restarts(
    material: Material, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    (out / "tls").mkdir(parents=True)
    (out / "operator.conf").write_bytes(b"not ours")  # never touched
    first = render(state_of(snapshot(material, 1)))
    writer = OutputWriter(out)
    change = writer.write(first, 1)
    assert change.output_dir == out and change.revision == 1
    assert set(change.written) == set(first) and change.removed == ()
    assert all(change.previous[p] is None for p in first)
    for path, item in first.items():
        assert (out / path).read_bytes() == item.content
        assert mode(out / path) == (0o600 if item.private else 0o644), path
    assert mode(out / "tls/admin/gw") == 0o755
    assert files_of(out) == set(first) | {MANIFEST_FILE, "operator.conf"}

    # The same again: nothing written, nothing for a driver to do.
    again = writer.write(first, 2)
    assert again.written == {} and again.removed == () and again.empty

    # The CA rotated and the keystore replaced: only those files change.
    second = render(
        state_of(
            snapshot(material, 3, keystore=material.keystore2, trusted=(material.client_ca_c,))
        )
    )
    changed = writer.write(second, 3)
    assert set(changed.written) == {
        "tls/admin/gw/server.pem",
        "tls/admin/gw/server.crt",
        "tls/admin/gw/server.key",
        "truststore.pem",
        "certificates/admin/trusted-0.pem",
    }
    assert changed.previous["truststore.pem"] == material.client_ca_a.pem
    assert (out / "truststore.pem").read_bytes() == material.client_ca_c.pem

    # A new writer (a node restart) still knows what it wrote: the keystore's removal
    # removes its files and its now empty directories.
    restarted = OutputWriter(out)
    third = {p: f for p, f in second.items() if not p.startswith("tls/")}
    removal = restarted.write(third, 4)
    assert removal.written == {}
    assert set(removal.removed) == {
        "tls/admin/gw/server.pem",
        "tls/admin/gw/server.crt",
        "tls/admin/gw/server.key",
    }
    assert removal.previous["tls/admin/gw/server.crt"] == second["tls/admin/gw/server.crt"].content
    assert not (out / "tls/admin").exists() and (out / "tls").is_dir()
    assert files_of(out) == set(third) | {MANIFEST_FILE, "operator.conf"}
    assert (out / "operator.conf").read_bytes() == b"not ours"
    manifest = json.loads((out / MANIFEST_FILE).read_bytes())
    assert manifest["revision"] == 4 and set(manifest["files"]) == set(third)
    assert not list(out.rglob(".*.tmp"))


def test_restore_puts_every_previous_file_back(material: Material, tmp_path: Path) -> None:
    out = tmp_path / "out"
    writer = OutputWriter(out)
    first = render(state_of(snapshot(material, 1)))
    writer.write(first, 1)
    before = {p: (out / p).read_bytes() for p in files_of(out)}
    # Revision 2: a new keystore replaces the old one, the CA rotates, a JWK goes away.
    second = {p.replace("tls/admin/gw/", "tls/admin/gw2/"): f for p, f in first.items()} | {
        "truststore.pem": OutputFile(material.client_ca_c.pem),
        "jwks.json": OutputFile(b"{}"),
    }
    change = writer.write(second, 2)
    assert change.removed and change.written
    assert (out / "tls/admin/gw2/server.key").exists() and not (out / "tls/admin/gw").exists()

    writer.restore(change)
    assert {p: (out / p).read_bytes() for p in files_of(out)} == before
    for path, item in first.items():
        assert mode(out / path) == (0o600 if item.private else 0o644), path
    assert not (out / "tls/admin/gw2").exists()
    # The manifest is the old one again: the next write compares with revision 1's files.
    assert OutputWriter(out).known() == {p: f.private for p, f in first.items()}
    assert OutputWriter(out).write(first, 3).empty
    with pytest.raises(OutputError, match="only the last change"):
        writer.restore(change)


def test_a_failed_write_puts_back_what_it_had_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    writer = OutputWriter(out)
    writer.write({"a.txt": OutputFile(b"one"), "b.txt": OutputFile(b"two")}, 1)
    (out / "zz").write_bytes(b"a file where the writer needs a directory")
    with pytest.raises(OutputError, match="could not write"):
        writer.write({"a.txt": OutputFile(b"ONE"), "zz/c.txt": OutputFile(b"three")}, 2)
    assert (out / "a.txt").read_bytes() == b"one"
    assert (out / "b.txt").read_bytes() == b"two"
    assert OutputWriter(out).known() == {"a.txt": False, "b.txt": False}
    assert not list(out.rglob(".*.tmp"))


def test_writer_refuses_paths_outside_the_output_dir(tmp_path: Path) -> None:
    writer = OutputWriter(tmp_path)
    for path in ("../x", "/etc/passwd", "a/../b", MANIFEST_FILE, ""):
        with pytest.raises(OutputError):
            writer.write({path: OutputFile(b"x")}, 1)
    # A manifest naming such paths (tampered) does not make the writer remove them.
    (tmp_path / MANIFEST_FILE).write_text(
        json.dumps({"format": 1, "revision": 1, "files": {"../victim": False, "ok.txt": False}})
    )
    (tmp_path.parent / "victim").write_bytes(b"keep")
    change = OutputWriter(tmp_path).write({}, 2)
    assert change.removed == ("ok.txt",)
    assert (tmp_path.parent / "victim").read_bytes() == b"keep"


def test_readers_never_see_a_half_written_file(tmp_path: Path) -> None:
    big_a, big_b = b"A" * 4_000_000, b"B" * 4_000_000
    writer = OutputWriter(tmp_path)
    writer.write({"tls/p/k/x.pem": OutputFile(big_a, private=True)}, 0)
    target = tmp_path / "tls/p/k/x.pem"
    seen: set[bytes] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            data = target.read_bytes()
            seen.add(data[:1] + data[-1:] + str(len(data)).encode())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for revision in range(1, 21):
            writer.write(
                {"tls/p/k/x.pem": OutputFile(big_b if revision % 2 else big_a, private=True)},
                revision,
            )
    finally:
        stop.set()
        reader.join()
    assert seen <= {b"AA4000000", b"BB4000000"}, seen
    assert len(seen) == 2


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another user needs root")
def test_owner_is_given_every_file_and_directory_created(tmp_path: Path) -> None:
    import pwd

    nobody = pwd.getpwnam("nobody")
    owner = (nobody.pw_uid, nobody.pw_gid)
    writer = OutputWriter(tmp_path / "out", owner=owner)
    writer.write(
        {"tls/p/k/x.key": OutputFile(b"key", private=True), "jwks.json": OutputFile(b"{}")}, 1
    )
    for path in ("tls", "tls/p", "tls/p/k", "tls/p/k/x.key", "jwks.json"):
        st = (tmp_path / "out" / path).stat()
        assert (st.st_uid, st.st_gid) == owner, path
    assert mode(tmp_path / "out/tls/p/k/x.key") == 0o600


# --- the files driver -----------------------------------------------------------------------


def change_in(directory: Path, revision: int = 7) -> Change:
    return Change(directory, revision, {"jwks.json": b"{}"}, {"jwks.json": None}, ())


def test_files_driver_runs_check_then_reload_with_the_environment(tmp_path: Path) -> None:
    log = tmp_path / "log"
    driver = FilesDriver(
        check_command=f'echo "check $KEYOPS_OUTPUT_DIR $KEYOPS_REVISION" >> {log}',
        reload_command=f'echo "reload $KEYOPS_REVISION" >> {log}',
    )
    summary = asyncio.run(driver.activate(change_in(tmp_path)))
    assert summary == "wrote 1 file(s), removed 0, check passed, reloaded"
    assert log.read_text() == f"check {tmp_path} 7\nreload 7\n"
    assert driver.describe() == {
        "checkCommand": driver.check_command,
        "reloadCommand": driver.reload_command,
    }
    assert asyncio.run(FilesDriver().activate(change_in(tmp_path))) == "wrote 1 file(s), removed 0"


def test_files_driver_check_failure_carries_its_stderr_and_skips_the_reload(tmp_path: Path) -> None:
    log = tmp_path / "log"
    driver = FilesDriver(
        check_command=(
            "echo 'checking'; echo 'bad certificate in' \"$KEYOPS_OUTPUT_DIR\" >&2; exit 3"
        ),
        reload_command=f"touch {log}",
    )
    with pytest.raises(DriverError) as caught:
        asyncio.run(driver.activate(change_in(tmp_path)))
    assert str(caught.value) == f"check command failed (exit 3): bad certificate in {tmp_path}"
    assert not log.exists()
    with pytest.raises(DriverError, match=r"^reload command failed \(exit 1\): no output$"):
        asyncio.run(FilesDriver(reload_command="false").activate(change_in(tmp_path)))


def test_files_driver_kills_a_command_at_its_timeout(tmp_path: Path) -> None:
    marker = tmp_path / "late"
    driver = FilesDriver(check_command=f"sleep 5; touch {marker}", timeout=0.5)
    loop = asyncio.new_event_loop()
    try:
        started = loop.time()
        with pytest.raises(DriverError, match=r"check command timed out after 0.5 s"):
            loop.run_until_complete(driver.activate(change_in(tmp_path)))
        assert loop.time() - started < 3
    finally:
        loop.close()
    # The shell's child went with it: nothing touches the marker later.
    import time

    time.sleep(0.2)
    assert not marker.exists()


def test_pem_certificate_is_what_cryptography_writes(material: Material) -> None:
    assert pem_certificate(material.server.der) == material.server.pem


def test_secret_is_not_in_repr(material: Material) -> None:
    entry = state_of(snapshot(material, 1)).keystores[0].entries[0]
    assert isinstance(entry.private_key_der, Secret)
    assert "BEGIN" not in repr(OutputFile(b"-----BEGIN PRIVATE KEY-----", private=True))
