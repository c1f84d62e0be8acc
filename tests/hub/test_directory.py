"""The directory: its tree, histories, CSV import and export with a dry run; scoring policies as
data; explaining a report's cell down to its signed records."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from hub import directory, policy, registry
from hub.audit import audit, check_explained
from hub.directory import Period as Span
from hub.directory_csv import export, import_folder
from hub.errors import RegistryError, ReportError
from hub.explain import explain, tally
from hub.policy import Policy
from hub.report import Period, aggregate, book, parse_period, render
from protocol import Channel, SigningKey, topic
from protocol.card import PHOTO_MAGIC
from tests.helpers import batch_bytes, chain
from tests.hub.conftest import HubDb

KEY = SigningKey.generate()
NOW = 1_763_800_000_000  # 2025-11-22 16:26 in Asia/Shanghai
DAY = "2025-11-22"
RATINGS = topic("d1", Channel.RATINGS)

UNITS_CSV = """id,parent,kind,name,timezone,opening
section-1,dept-social,section,社保一科,,
dept-social,hall-1,department,社保医保,,
hall-1,site-1,hall,一楼大厅,,
site-1,,site,政务服务中心,Asia/Shanghai,Mon-Fri 09:00-17:00
dept-tax,hall-1,department,税务,,
"""
STAFF_CSV = """id,name,status,photo
E1,王芳,active,photos/E1.jpg
E2,李强,active,
"""
MEMBERSHIPS_CSV = """staff,unit,first_day,last_day
E1,section-1,,2025-11-21
E1,dept-tax,2025-11-22,
E2,dept-social,,
"""


JPEG = PHOTO_MAGIC["JPEG"] + b"\x00" * 200


def write(folder: Path, **files: str) -> Path:
    """The CSV files in `folder`, and E1's photo beside them as STAFF_CSV names it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    (folder / "photos").mkdir(exist_ok=True)
    (folder / "photos" / "E1.jpg").write_bytes(JPEG)
    return folder


def _history(rows: str) -> dict[str, str]:
    return {"units": UNITS_CSV, "staff": STAFF_CSV, "memberships": "staff,unit,first_day,last_day\n" + rows}


def test_overwriting_a_period_keeps_what_lies_outside_it() -> None:
    history = [Span("0001-01-01", None, "A")]
    moved = directory.overwrite(history, Span("2025-11-10", "2025-11-20", "B"), "2025-11-10", "2025-11-20")
    assert moved == [
        Span("0001-01-01", "2025-11-09", "A"),
        Span("2025-11-10", "2025-11-20", "B"),
        Span("2025-11-21", None, "A"),
    ]
    back = directory.overwrite(moved, Span("2025-11-10", "2025-11-20", "A"), "2025-11-10", "2025-11-20")
    assert back == history  # neighbours with the same unit are joined again
    assert directory.overwrite(history, None, "2025-11-10", None) == [Span("0001-01-01", "2025-11-09", "A")]


def test_import_is_idempotent_and_a_dry_run_changes_nothing(hub_db: HubDb, tmp_path: Path) -> None:
    folder = write(tmp_path / "hr", units=UNITS_CSV, staff=STAFF_CSV, memberships=MEMBERSHIPS_CSV)
    dry = import_folder(hub_db.writer, folder, dry_run=True)
    assert dry.dry_run
    assert len(dry.changes) == 5 + 2 + 2
    assert hub_db.rows("SELECT count(*) FROM units") == [(0,)]
    first = import_folder(hub_db.writer, folder)
    assert first.changes == dry.changes
    assert hub_db.rows("SELECT id, parent FROM units WHERE id = 'section-1'") == [("section-1", "dept-social")]
    assert hub_db.rows("SELECT unit, first_day, last_day FROM memberships WHERE staff = 'E1' ORDER BY first_day") == [
        ("section-1", "0001-01-01", "2025-11-21"),
        ("dept-tax", "2025-11-22", None),
    ]
    again = import_folder(hub_db.writer, folder)
    assert again.changes == []
    assert again.ratings_moved == 0
    out = tmp_path / "out"
    rows = export(hub_db.reader, out)
    assert rows == {"units.csv": 5, "staff.csv": 2, "counters.csv": 0, "memberships.csv": 3, "placements.csv": 0}
    assert import_folder(hub_db.writer, out).changes == []  # what export writes imports to no change


def test_a_photo_is_found_beside_the_files_and_one_a_card_cannot_carry_refuses_the_import(
    hub_db: HubDb, tmp_path: Path
) -> None:
    folder = write(tmp_path / "hr", units=UNITS_CSV, staff=STAFF_CSV)
    import_folder(hub_db.writer, folder)
    stored = str((folder / "photos" / "E1.jpg").absolute())
    assert hub_db.rows("SELECT id, photo FROM staff ORDER BY id") == [("E1", stored), ("E2", "")]
    assert import_folder(hub_db.writer, folder).changes == []  # the same files again: the same full path

    (folder / "photos" / "E1.jpg").write_bytes(PHOTO_MAGIC["JPEG"] + b"\x00" * (48 * 1024))
    with pytest.raises(RegistryError, match=r"staff.csv:2: photo .*E1.jpg.*over the card's limit"):
        import_folder(hub_db.writer, folder)
    (folder / "photos" / "E1.jpg").write_bytes(b"GIF89a" + b"\x00" * 100)
    with pytest.raises(RegistryError, match=r"staff.csv:2: photo .*neither a PNG nor a JPEG"):
        import_folder(hub_db.writer, folder)
    missing = STAFF_CSV.replace("photos/E1.jpg", "photos/E9.jpg").replace("王芳", "王芳芳")
    with pytest.raises(RegistryError, match=r"staff.csv:2: photo .*E9.jpg.* cannot be read"):
        import_folder(hub_db.writer, write(tmp_path / "other", staff=missing))
    assert hub_db.rows("SELECT name, photo FROM staff WHERE id = 'E1'") == [("王芳", stored)]  # all refused


def test_a_dry_run_says_how_many_ratings_a_back_dated_move_would_move(hub_db: HubDb, tmp_path: Path) -> None:
    hub_db.writer.write(registry.add_device, "d1", KEY.public.hex, counter="W1")
    import_folder(hub_db.writer, write(tmp_path / "a", units=UNITS_CSV, staff=STAFF_CSV, memberships=MEMBERSHIPS_CSV))
    hub_db.receive(topic("d1", Channel.RATINGS), batch_bytes(KEY, chain(KEY, "d1", 3)), NOW)
    assert hub_db.rows("SELECT DISTINCT department FROM ratings") == [("dept-tax",)]
    corrected = MEMBERSHIPS_CSV.replace("E1,dept-tax,2025-11-22,", "E1,dept-tax,2025-11-23,").replace(
        "E1,section-1,,2025-11-21", "E1,section-1,,2025-11-22"
    )
    plan = import_folder(hub_db.writer, write(tmp_path / "b", memberships=corrected), dry_run=True)
    assert plan.ratings_moved == 3
    [change] = plan.changes
    assert change["after"] == ["0001-01-01..2025-11-22 section-1", "2025-11-23.. dept-tax"]
    assert hub_db.rows("SELECT DISTINCT department FROM ratings") == [("dept-tax",)]  # a dry run
    import_folder(hub_db.writer, tmp_path / "b")
    assert hub_db.rows("SELECT DISTINCT department FROM ratings") == [("section-1",)]
    period = parse_period(DAY)
    [department] = aggregate(hub_db.reader, period, "department").rows  # a section counts in its department
    assert (department.key, department.name, department.total()) == ("dept-social", "社保医保", 3)
    [site] = aggregate(hub_db.reader, period, "site").rows
    assert (site.key, site.total()) == ("site-1", 3)
    units = {row.key: row.total() for row in aggregate(hub_db.reader, period, "unit").rows}
    assert units == {"section-1": 3, "dept-social": 3, "hall-1": 3, "site-1": 3}
    [counter] = aggregate(hub_db.reader, period, "counter").rows
    assert (counter.key, counter.total()) == ("W1", 3)
    assert audit(hub_db.reader)["problems"] == []


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"units": "id,parent,kind\nx,,site\n"}, "the header lacks name, timezone, opening"),
        ({"units": UNITS_CSV.replace("dept-tax,hall-1", "dept-tax,hall-9")}, "units.csv:6: unit dept-tax: parent"),
        ({"units": UNITS_CSV.replace("Asia/Shanghai", "Mars/Olympus")}, "time zone 'Mars/Olympus'"),
        ({"staff": STAFF_CSV.replace("active,photos", "retired,photos")}, "staff.csv:2: staff E1: status"),
        (
            {
                "units": UNITS_CSV,
                "staff": STAFF_CSV,
                "memberships": "staff,unit,first_day,last_day\nE1,dept-tax,2025-13-01,\n",
            },
            "memberships.csv:2: first day '2025-13-01'",
        ),
        (
            {
                "units": UNITS_CSV,
                "staff": STAFF_CSV,
                "memberships": "staff,unit,first_day,last_day\nE1,dept-tax,,\nE1,dept-social,2025-01-01,\n",
            },
            "overlaps",
        ),
        (
            {"units": UNITS_CSV, "staff": STAFF_CSV, "memberships": "staff,unit,first_day,last_day\nE1,nowhere,,\n"},
            "unit nowhere is not in the directory",
        ),
        ({"memberships": "staff,unit,first_day,last_day\nE5,dept-tax,,\n"}, "staff E5 is neither in staff.csv"),
        ({"staff": "id,name,status,photo\nE1,a,active\n"}, "staff.csv:2: the row has another number of fields"),
        ({"units": "id,parent,kind,name,timezone,opening\na,b,hall,,,\nb,a,hall,,,\n"}, "cycle"),
    ],
)
def test_a_bad_row_refuses_the_whole_import_naming_its_file_and_line(
    hub_db: HubDb, tmp_path: Path, files: dict[str, str], message: str
) -> None:
    before = hub_db.rows("SELECT count(*) FROM units")
    with pytest.raises(RegistryError, match=message):
        import_folder(hub_db.writer, write(tmp_path / "bad", **files))
    assert hub_db.rows("SELECT count(*) FROM units") == before


def test_an_empty_folder_is_refused(hub_db: HubDb, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"none of units\.csv"):
        import_folder(hub_db.writer, tmp_path)


def test_policies_are_versions_that_apply_from_a_day_and_reports_name_them(hub_db: HubDb) -> None:
    hub_db.writer.write(registry.add_device, "d1", KEY.public.hex, department="A")
    hub_db.writer.write(registry.add_staff, "E1", department="A")
    hub_db.receive(topic("d1", Channel.RATINGS), batch_bytes(KEY, chain(KEY, "d1", 4, score=4)), NOW)
    doc = {"name": "2025 review", "points": {"5": 100, "4": 80, "3": 60, "2": 0, "1": -50}, "review_weight": 0.4}
    added = hub_db.writer.write(policy.add, doc, first_day=DAY, by="HR 张")
    assert (added.version, added.first_day, added.points[4]) == (1, DAY, 80)
    with pytest.raises(ReportError, match="must start after the latest one"):
        hub_db.writer.write(policy.add, doc, first_day="2025-11-01", by="HR")
    rules = book(hub_db.reader, Policy())
    period = Period(date(2025, 11, 21), date(2025, 11, 22), "2025-11-21..2025-11-22")
    report = aggregate(hub_db.reader, period, "staff", rules=rules)
    assert [(a, b, p.version) for a, b, p in report.policies] == [
        ("2025-11-21", "2025-11-21", 0),
        ("2025-11-22", "2025-11-22", 1),
    ]
    [row] = report.rows
    assert row.points == 4 * 80
    [shown] = json.loads(render(report, period=period, fmt="json"))["rows"]
    assert (shown["index"], shown["review"]) == ("75.0", "30.0")  # the rating part: 40 % of a review
    assert hub_db.rows("SELECT count(*) FROM ratings WHERE score = 4") == [(4,)]  # no rating was rewritten


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "a JSON object"),
        ({"points": {"5": 1}}, "give each level"),
        ({"timeout": 7}, "timeout"),
        ({"exclude": ["misuse"]}, "must hold superseded"),
        ({"exclude": ["uninvited"]}, "have their own fields"),
        ({"bad_needs_reason": "yes"}, "bad_needs_reason"),
        ({"review_weight": 2}, "review_weight"),
        ({"colour": "red"}, "no field 'colour'"),
    ],
)
def test_a_bad_policy_is_refused_saying_why(doc: object, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        policy.check(doc)


def test_explaining_a_cell_lists_its_records_with_verdicts_and_verify_checks_them(hub_db: HubDb) -> None:
    hub_db.writer.write(registry.add_device, "d1", KEY.public.hex, department="A")
    hub_db.writer.write(registry.add_staff, "E1", department="A")
    records = chain(KEY, "d1", 3, score=1)
    hub_db.receive(topic("d1", Channel.RATINGS), batch_bytes(KEY, records), NOW)
    period = parse_period(DAY)
    found: Counter[str] = Counter()
    items = list(tally(explain(hub_db.reader, period, "staff", "E1"), found))
    assert [(i.seq, i.verdict, i.level) for i in items] == [(1, "counted", 1), (2, "counted", 1), (3, "counted", 1)]
    [row] = aggregate(hub_db.reader, period, "staff").rows
    assert found["total"] == row.total()
    assert found["n1"] == row.levels[1]
    assert list(explain(hub_db.reader, period, "staff", "E1:n5")) == []
    lines = [json.dumps(i.as_json()) for i in items]
    assert check_explained(hub_db.reader, lines) == {"records": 3, "problems": []}
    forged = json.loads(lines[0])
    forged["record"] = forged["record"].replace('"score":1', '"score":5')
    result = check_explained(hub_db.reader, [json.dumps(forged)])
    assert result["problems"][0]["problem"] == "the hash is not the hash of the record"
    with pytest.raises(ReportError, match="no column"):
        list(explain(hub_db.reader, period, "staff", "E1:n9"))


def test_an_upheld_appeal_leaves_a_rating_out_and_can_be_reversed(hub_db: HubDb) -> None:
    from hub import appeals

    hub_db.writer.write(registry.add_device, "d1", KEY.public.hex, department="A")
    hub_db.writer.write(registry.add_staff, "E1", department="A")
    hub_db.receive(topic("d1", Channel.RATINGS), batch_bytes(KEY, chain(KEY, "d1", 2, score=1)), NOW)
    with pytest.raises(RegistryError, match="who decided"):
        hub_db.writer.write(appeals.invalidate, "d1", 1, by="", why="")
    hub_db.writer.write(appeals.invalidate, "d1", 1, by="王科长", why="the customer pressed by mistake")
    period = parse_period(DAY)
    [row] = aggregate(hub_db.reader, period, "staff").rows
    assert (row.levels[1], row.excluded["invalidated"]) == (1, 1)
    [item, _other] = explain(hub_db.reader, period, "staff", "E1")
    assert item.verdict == "left_out"
    assert item.why.startswith("invalidated: the customer pressed by mistake (decided by 王科长")
    with pytest.raises(RegistryError, match="invalidated already"):
        hub_db.writer.write(appeals.invalidate, "d1", 1, by="x", why="y")
    hub_db.writer.write(appeals.reinstate, "d1", 1)
    [row] = aggregate(hub_db.reader, period, "staff").rows
    assert (row.levels[1], row.excluded["invalidated"]) == (2, 0)
    assert audit(hub_db.reader)["problems"] == []


def test_a_policy_may_need_a_reason_for_a_bad_rating(hub_db: HubDb) -> None:
    hub_db.writer.write(registry.add_device, "d1", KEY.public.hex, department="A")
    hub_db.writer.write(registry.add_staff, "E1", department="A")
    hub_db.receive(topic("d1", Channel.RATINGS), batch_bytes(KEY, chain(KEY, "d1", 2, score=2)), NOW)
    period = parse_period(DAY)
    [lenient] = aggregate(hub_db.reader, period, "staff").rows
    assert (lenient.levels[2], lenient.excluded["noreason"]) == (2, 0)
    strict = Policy(bad_needs_reason=True)
    [row] = aggregate(hub_db.reader, period, "staff", rules=[strict]).rows
    assert (row.levels[2], row.excluded["noreason"]) == (0, 2)


def test_the_hours_and_weekdays_of_a_row(hub_db: HubDb) -> None:
    from hub.explain import distribution

    hub_db.writer.write(registry.add_device, "d1", KEY.public.hex, department="A")
    hub_db.writer.write(registry.add_staff, "E1", department="A")
    hub_db.receive(topic("d1", Channel.RATINGS), batch_bytes(KEY, chain(KEY, "d1", 3, score=4)), NOW)
    shown = distribution(explain(hub_db.reader, parse_period(DAY), "staff", "E1"), "Asia/Shanghai")
    assert shown["hours"] == {"16": {"n": 3, "mean": 4.0}}  # 16:26 in Shanghai
    assert shown["weekdays"] == {"6": {"n": 3, "mean": 4.0}}  # 2025-11-22 is a Saturday
    assert distribution(explain(hub_db.reader, parse_period(DAY), "staff", "E1"), "UTC")["hours"] == {
        "8": {"n": 3, "mean": 4.0}
    }


def test_the_commands_import_explain_and_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hub.config import HubConfig
    from hub.ingest import Ingest
    from hub.writer import Writer
    from pingjia.cli import main

    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    folder = write(tmp_path / "hr", units=UNITS_CSV, staff=STAFF_CSV, memberships=MEMBERSHIPS_CSV)
    assert main(["hub", "directory", "import", "--db", db, str(folder), "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["dry_run"] is True
    assert main(["hub", "directory", "import", "--db", db, str(folder)]) == 0
    capsys.readouterr()
    with Writer.open(db) as writer:
        writer.write(registry.add_device, "d1", KEY.public.hex, counter="W1")
        from hub.config import HubConfig
        from hub.ingest import Ingest

        with writer.transaction():
            Ingest(writer, HubConfig()).receive(
                topic("d1", Channel.RATINGS), batch_bytes(KEY, chain(KEY, "d1", 4)), NOW
            )
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps({"name": "2025", "timeout": 0}), encoding="utf-8")
    assert main(["hub", "policy", "add", "--db", db, str(policy_file), "--from", "2025-11-01", "--by", "HR"]) == 0
    assert main(["hub", "policy", "list", "--db", db]) == 0
    assert [p["version"] for p in json.loads(capsys.readouterr().out.split("\n", 1)[1])] == [1]
    argv = ["report", "--db", db, "--period", "2025-11", "--level", "department", "--format", "json"]
    assert main(argv) == 0
    document = json.loads(capsys.readouterr().out)
    assert [(r["department"], r["name"], r["total"]) for r in document["rows"]] == [("dept-tax", "税务", 4)]
    assert [p["version"] for p in document["policies"]] == [1]
    assert main([*argv, "--explain", "dept-tax:n5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert json.loads(lines[-1])["summary"]["columns"] == {"n5": 4, "total": 4}
    explained = tmp_path / "explained.jsonl"
    explained.write_text("\n".join(lines), encoding="utf-8")
    assert main(["hub", "verify", "--db", db, "--explained", str(explained)]) == 0
    assert json.loads(capsys.readouterr().out) == {"records": 4, "problems": []}
    assert main(["hub", "directory", "move", "--db", db, "E1", "dept-social", "--from", "2025-11-01"]) == 0
    assert json.loads(capsys.readouterr().out)["ratings_moved"] == 4
    assert main(["hub", "directory", "bindings", "--db", db, "--staff", "E1", "--period", "2025-11"]) == 0
    [binding] = json.loads(capsys.readouterr().out)
    assert (binding["day"], binding["device"], binding["first_seq"], binding["last_seq"]) == (DAY, "d1", 1, 4)
    assert main(["hub", "directory", "export", "--db", db, str(tmp_path / "out")]) == 0
    assert "E1,dept-social,2025-11-01," in (tmp_path / "out" / "memberships.csv").read_text(encoding="utf-8")
    assert main(["hub", "directory", "move", "--db", db, "E1", "nowhere", "--from", "2025-11-01"]) == 2
    assert "unit nowhere is not in the directory" in capsys.readouterr().err
    assert main(["report", "--db", db, "--period", "2025-11", "--explain", "E1:n9"]) == 2
