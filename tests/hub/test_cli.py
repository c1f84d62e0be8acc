"""`pingjia hub ...` and `pingjia report` as an operator meets them: settings refused by name, one
writer, migrations only where they belong, readers that neither create nor migrate, one `--db`."""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path

import pytest

from hub import registry, schema
from hub.db import Database, open_database
from hub.errors import SchemaError, StoreError
from hub.queries import Reader
from hub.writer import Writer
from pingjia.cli import build_parser, main
from protocol import SigningKey
from runtime.fake import FakeBroker
from tests.hub.conftest import Served, older_database, schema_version

KEY = SigningKey.generate()
# (the command's words, its other arguments): each gets `--db` in between.
READS = [
    (["hub", "devices"], []),
    (["hub", "rejects"], []),
    (["hub", "verify"], []),
    (["report"], ["--period", "2026-11"]),
]
WRITES = [
    (["hub", "add-device"], ["--id", "d1", "--pubkey", KEY.public.hex]),
    (["hub", "add-staff"], ["--id", "E1", "--department", "A"]),
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_on(capsys: pytest.CaptureFixture[str], command: tuple[list[str], list[str]], db: str) -> tuple[int, str, str]:
    words, rest = command
    return run(capsys, *words, "--db", db, *rest)


# -- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("assignment", "name", "allowed"),
    [
        ("timezone=Mars/Olympus", "timezone", "an IANA time zone name, such as Asia/Shanghai"),
        ("timezone=America", "timezone", "an IANA time zone name"),
        ("timezone=/etc/passwd", "timezone", "an IANA time zone name"),
        ("no_such_setting=1", "no_such_setting", "no such setting; known: clock_skew_s, "),
        ("timeout_score=9", "timeout_score", "int in 0..5"),
        ("group_max=many", "group_max", "int in 1..10000"),
        ("count_uninvited=perhaps", "count_uninvited", "true or false"),
        ("mqtt_protocol=4", "mqtt_protocol", "one of auto, 5, 3.1.1"),
    ],
)
def test_a_bad_setting_is_named_with_its_value_and_what_is_allowed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, assignment: str, name: str, allowed: str
) -> None:
    db = tmp_path / "hub.sqlite3"
    code, _out, err = run(
        capsys, "hub", "serve", "--db", f"sqlite:///{db}", "--broker", "mqtt://127.0.0.1:1", "--set", assignment
    )
    value = assignment.split("=", 1)[1]
    assert code == 2
    assert err.startswith(f"pingjia hub serve: setting {name!r}: {value!r} is not allowed; {allowed}"), err
    assert "Traceback" not in err
    assert err.count("\n") == 1  # one line, no more
    assert not db.exists()  # refused before anything was opened


def test_a_bad_time_zone_is_refused_by_report_too(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _out, err = run(capsys, "report", "--db", str(tmp_path / "x"), "--period", "2026-11", "--set", "timezone=x")
    assert (code, err) == (2, "pingjia report: setting 'timezone': 'x' is not allowed; " + _zone_rule() + "\n")


def _zone_rule() -> str:
    return "an IANA time zone name, such as Asia/Shanghai"


# -- one --db --------------------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_hub_command_takes_the_same_db_and_says_pingjia_db_and_its_default() -> None:
    top = _subcommands(build_parser())
    commands: dict[str, argparse.ArgumentParser] = {}
    for name, parser in _subcommands(top["hub"]).items():
        if any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):  # a group: its commands
            commands |= {f"hub {name} {step}": inner for step, inner in _subcommands(parser).items()}
        else:
            commands[f"hub {name}"] = parser
    commands["report"] = top["report"]
    assert {"hub serve", "hub migrate", "hub add-device", "hub add-staff", "hub devices", "hub rejects"} <= set(
        commands
    )
    without_db = {"hub init"}  # makes the hub's key file only
    for name, parser in commands.items():
        if name in without_db:
            assert not [action for action in parser._actions if "--db" in action.option_strings], name
            continue
        [db] = [action for action in parser._actions if "--db" in action.option_strings]
        assert db.help is not None, name
        assert "$PINGJIA_DB" in db.help, name
        assert "sqlite:///var/hub.sqlite3" in db.help, name
        assert "postgresql://user@host/db" in db.help, name
        assert "pip install 'pingjia[postgres]'" in db.help, name
    assert "migrated" in commands["hub serve"].format_help()


def test_pingjia_db_points_every_command_at_the_same_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'hall' / 'hub.sqlite3'}"
    monkeypatch.setenv("PINGJIA_DB", url)
    assert run(capsys, "hub", "add-device", "--id", "d1", "--pubkey", KEY.public.hex)[0] == 0
    assert run(capsys, "hub", "add-staff", "--id", "E1", "--department", "A")[0] == 0
    code, out, _err = run(capsys, "hub", "devices")
    assert code == 0
    assert [device["device"] for device in json.loads(out)] == ["d1"]
    with Reader.open(url) as reader:
        assert reader.staff_names() == {"E1": ("", "A")}


# -- one writer, and where migrations run ----------------------------------------------------------


def test_the_first_time_setup_creates_the_database_at_the_current_schema(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The README's order: `hub add-device` and `hub add-staff` before the hub ever served."""
    url = f"sqlite:///{tmp_path / 'var' / 'hub.sqlite3'}"
    code, out, _err = run(
        capsys, "hub", "add-device", "--db", url, "--id", "hall1-w03", "--pubkey", KEY.public.hex, "--department", "A"
    )
    assert (code, json.loads(out)["device"]) == (0, "hall1-w03")
    assert run(capsys, "hub", "add-staff", "--db", url, "--id", "E1024", "--name", "王芳", "--department", "A")[0] == 0
    assert schema_version(url) == schema.latest()
    with Reader.open(url) as reader:
        assert [device.id for device in reader.devices()] == ["hall1-w03"]


def test_a_bad_registration_creates_no_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    code, _out, err = run(capsys, "hub", "add-device", "--db", str(db), "--id", "d1", "--pubkey", "zz")
    assert code == 2
    assert err.startswith("pingjia hub add-device: public key of d1 is not an Ed25519 key")
    assert not db.exists()


@pytest.mark.parametrize("command", WRITES)
def test_a_write_command_does_not_migrate_an_older_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: tuple[list[str], list[str]]
) -> None:
    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    older_database(url, 4)
    code, _out, err = run_on(capsys, command, url)
    assert code == 2
    assert "is at schema 4" in err
    assert f"needs schema {schema.latest()}" in err
    assert "`pingjia hub migrate`" in err
    assert schema_version(url) == 4  # left as it was
    db = open_database(url)
    try:
        assert db.execute("SELECT count(*) FROM devices").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM staff").fetchone()[0] == 0
    finally:
        db.close()


def test_hub_migrate_brings_an_older_database_to_the_current_schema_and_then_writes_go_through(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    older_database(url, 4)
    code, out, _err = run(capsys, "hub", "migrate", "--db", url)
    assert code == 0
    assert json.loads(out) == {"db": url, "schema": schema.latest(), "was": 4}
    assert run(capsys, "hub", "add-staff", "--db", url, "--id", "E1", "--department", "A")[0] == 0
    code, out, _err = run(capsys, "hub", "migrate", "--db", url)  # nothing left to do
    assert json.loads(out)["was"] == schema.latest()


def test_hub_serve_migrates_an_older_database_when_it_starts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    older_database(url, 3)
    served = Served(url, FakeBroker())
    served.stop()
    assert schema_version(url) == schema.latest()


def test_a_database_newer_than_this_pingjia_is_refused_by_every_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    with Writer.open(url) as writer:
        writer.write(lambda db: db.execute("INSERT INTO schema_version(version, applied_ms) VALUES (999, 0)"))
    for command in [*WRITES, (["hub", "migrate"], []), *READS]:
        code, _out, err = run_on(capsys, command, url)
        assert code == 2, command
        assert "is at schema 999, newer than this pingjia knows" in err, command
    with pytest.raises(SchemaError, match="newer than this pingjia"):
        Served(url, FakeBroker())


@pytest.mark.parametrize("command", READS)
def test_a_read_command_on_a_missing_database_says_so_and_creates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: tuple[list[str], list[str]]
) -> None:
    db = tmp_path / "nowhere" / "hub.sqlite3"
    code, out, err = run_on(capsys, command, f"sqlite:///{db}")
    assert (code, out) == (2, "")
    assert f"no hub database at {db}" in err
    assert "Traceback" not in err
    assert not db.parent.exists()


@pytest.mark.parametrize("command", READS)
def test_a_read_command_on_an_older_database_says_so_and_migrates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: tuple[list[str], list[str]]
) -> None:
    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    older_database(url, 5)
    code, out, err = run_on(capsys, command, url)
    assert (code, out) == (2, "")
    assert "is at schema 5" in err
    assert "`pingjia hub migrate`" in err
    assert schema_version(url) == 5


def test_a_read_command_on_an_empty_file_says_there_is_no_hub_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "hub.sqlite3"
    db.write_bytes(b"")
    code, _out, err = run(capsys, "hub", "devices", "--db", str(db))
    assert code == 2
    assert "holds no hub tables" in err
    assert db.read_bytes() == b""


def test_queries_run_on_a_read_only_connection(db_url: str) -> None:
    with Writer.open(db_url) as writer:
        writer.write(registry.add_staff, "E1", department="A")
    with Reader.open(db_url) as reader:
        assert reader.db.read_only
        with pytest.raises(StoreError):
            reader.execute("INSERT INTO staff(id, name, department, added_ms) VALUES ('E2', '', 'B', 0)")
        with pytest.raises(StoreError):
            reader.execute("DELETE FROM staff")
        assert reader.staff_names() == {"E1": ("", "A")}
    read_only = open_database(db_url, read_only=True)
    try:
        with pytest.raises(StoreError, match="opened for writing"):
            Writer(read_only)
    finally:
        read_only.close()


def test_the_writer_belongs_to_one_thread(tmp_path: Path) -> None:
    writer = Writer.open(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    failures: list[BaseException] = []

    def elsewhere() -> None:
        try:
            writer.write(registry.add_staff, "E1", department="A")
        except StoreError as exc:
            failures.append(exc)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert [str(f) for f in failures] == [f"{writer.name}: the writer belongs to another thread; writes go through it"]
    writer.write(registry.add_staff, "E1", department="A")  # on its own thread it writes
    writer.close()


def test_a_new_database_is_created_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    broken = (*schema._migrations()[:-1], (schema.latest(), "CREATE TABLE staff (id TEXT)"))  # fails: it exists
    monkeypatch.setattr(schema, "_migrations", lambda: broken)
    with pytest.raises(StoreError):
        Writer.open(url)
    monkeypatch.undo()
    db: Database = open_database(url)
    try:
        assert schema.version(db) is None  # nothing half-made: the next writer starts from scratch
    finally:
        db.close()
    Writer.open(url).close()
    assert schema_version(url) == schema.latest()
