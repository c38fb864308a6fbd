"""Importing a county's organisation from CSV: the dry run shows every change, and applying is all or nothing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.db.org import Organisation
from fleet.db.store import SqlFleetStore
from fleet.org import OrgError, OrgNode, Tree
from fleet.orgimport import ImportPlan, apply_import, plan_import

HEADER = "kind,code,parent,name_fi,name_sv,name_en,oid,service_type,tz,misuse_interval_s,target"
#: A wellbeing services county: a region, two service areas, four units (one in Åland's zone), a location.
COUNTY = "\n".join(
    [
        HEADER,
        "region,pirha,,Pirkanmaan hyvinvointialue,Birkalands välfärdsområde,Pirkanmaa wellbeing county,,,,,",
        "area,pirha-perus,pirha,Perusterveydenhuolto,Primärvård,Primary health care,,,,,",
        "area,pirha-suun,pirha,Suun terveydenhuolto,Munhälsovård,Oral health care,,,,,",
        "unit,hervanta-tk,pirha-perus,Hervannan terveysasema,Hervanta hälsostation,Hervanta health centre,"
        "1.2.246.10.2048198.10.1,health_centre,Europe/Helsinki,30,40",
        "unit,kaleva-neuvola,pirha-perus,Kalevan neuvola,Kaleva rådgivningsbyrå,Kaleva child health clinic,"
        "1.2.246.10.2048198.10.2,child_health,,15,50",
        "unit,ylojarvi-tk,pirha-perus,Ylöjärven terveysasema,Ylöjärvi hälsostation,Ylöjärvi health centre,"
        "1.2.246.10.2048198.10.3,health_centre,Europe/Mariehamn,2.5,-10",
        "unit,tesoma-hammas,pirha-suun,Tesoman hammashoitola,Tesoma tandvårdsklinik,Tesoma dental clinic,"
        "1.2.246.10.2048198.10.4,oral_health,,,",
        "location,hervanta-aula,hervanta-tk,Pääaula,Huvudentré,Main lobby,,,,,",
    ]
)
CODES = [
    "pirha",
    "pirha-perus",
    "pirha-suun",
    "hervanta-tk",
    "kaleva-neuvola",
    "ylojarvi-tk",
    "tesoma-hammas",
    "hervanta-aula",
]


@pytest.fixture
def org(fleet_db: SqlFleetStore) -> Organisation:
    return Organisation(fleet_db)


def dry_run(org: Organisation, text: str) -> ImportPlan:
    return plan_import(text, org.tree(), org.store.unit_zones())


def imported(org: Organisation, text: str = COUNTY) -> ImportPlan:
    plan = dry_run(org, text)
    assert plan.ok, [line.error for line in plan.lines]
    return apply_import(plan, text, org, "it-admin")


def state(org: Organisation) -> tuple[dict[int, OrgNode], dict[str, str], list[Any]]:
    """Everything an import may write: the nodes, the units' zones and the audit log."""
    return org.tree().nodes, org.store.unit_zones(), org.audit_entries(limit=10_000)


def errors(plan: ImportPlan) -> list[str]:
    return [line.error for line in plan.lines if line.error is not None]


# -- the dry run and applying it ---------------------------------------------------------------


def test_a_dry_run_of_a_county_file_reports_an_add_per_row_and_stores_nothing(org: Organisation) -> None:
    before = state(org)
    plan = dry_run(org, COUNTY)
    assert plan.ok and (plan.added, plan.changed, plan.unchanged) == (8, 0, 0)
    assert [(line.line, line.code, line.action) for line in plan.lines] == [
        (n, code, "add") for n, code in enumerate(CODES, start=2)
    ]
    hervanta = plan.lines[3].changes
    assert hervanta["kind"] == (None, "unit") and hervanta["parent"] == (None, "pirha-perus")
    assert hervanta["oid"] == (None, "1.2.246.10.2048198.10.1") and hervanta["tz"] == (None, "Europe/Helsinki")
    assert hervanta["misuse_interval_s"] == (None, 30.0) and hervanta["target"] == (None, 40)
    assert plan.lines[4].changes["tz"] == (None, "Europe/Helsinki")  # empty tz: the default zone
    assert "parent" not in plan.lines[0].changes  # a region has none
    assert state(org) == before


def test_applying_the_county_file_stores_every_node_with_an_audit_entry_each(org: Organisation) -> None:
    plan = imported(org)
    assert plan.added == 8
    tree = org.tree()
    assert sorted(tree.by_code) == sorted(CODES)
    unit = tree.by_code["ylojarvi-tk"]
    assert (unit.name_fi, unit.name_sv, unit.name_en) == (
        "Ylöjärven terveysasema",
        "Ylöjärvi hälsostation",
        "Ylöjärvi health centre",
    )
    assert (unit.oid, unit.service_type, unit.misuse_interval_s, unit.target) == (
        "1.2.246.10.2048198.10.3",
        "health_centre",
        2.5,
        -10,
    )
    assert [n.code for n in tree.path(tree.by_code["hervanta-aula"].id)] == [
        "pirha",
        "pirha-perus",
        "hervanta-tk",
        "hervanta-aula",
    ]
    assert tree.by_code["pirha-suun"].name_sv == "Munhälsovård"
    assert tree.by_code["tesoma-hammas"].name_sv == "Tesoma tandvårdsklinik"
    assert tree.by_code["tesoma-hammas"].target is None
    assert org.zone("ylojarvi-tk") == "Europe/Mariehamn" and org.zone("kaleva-neuvola") == "Europe/Helsinki"
    entries = org.audit_entries()
    assert sorted(e.object for e in entries) == sorted(f"{tree.by_code[c].kind}:{c}" for c in CODES)
    assert {e.action for e in entries} == {"region.create", "area.create", "unit.create", "location.create"}
    assert {e.actor for e in entries} == {"it-admin"}


def test_importing_the_same_file_again_reports_every_row_same_and_writes_nothing(org: Organisation) -> None:
    imported(org)
    before = state(org)
    plan = dry_run(org, COUNTY)
    assert [line.action for line in plan.lines] == ["same"] * 8
    assert (plan.added, plan.changed, plan.unchanged) == (0, 0, 8)
    assert all(line.changes == {} for line in plan.lines)
    apply_import(plan, COUNTY, org, "it-admin")
    assert state(org) == before


def test_a_changed_name_and_zone_report_change_with_before_and_after(org: Organisation) -> None:
    imported(org)
    text = COUNTY.replace("Kalevan neuvola,", "Kalevan lastenneuvola,").replace(
        "child_health,,15", "child_health,Europe/Mariehamn,15"
    )
    plan = dry_run(org, text)
    assert (plan.added, plan.changed, plan.unchanged) == (0, 1, 7)
    line = plan.lines[4]
    assert (line.line, line.code, line.action) == (6, "kaleva-neuvola", "change")
    assert line.changes == {
        "name_fi": ("Kalevan neuvola", "Kalevan lastenneuvola"),
        "tz": ("Europe/Helsinki", "Europe/Mariehamn"),
    }
    apply_import(plan, text, org, "it-admin")
    assert org.tree().by_code["kaleva-neuvola"].name_fi == "Kalevan lastenneuvola"
    assert org.zone("kaleva-neuvola") == "Europe/Mariehamn"
    (entry,) = org.audit_entries(obj="unit:kaleva-neuvola", limit=1)
    assert entry.action == "unit.update"
    assert (entry.before["name_fi"], entry.after["name_fi"]) == ("Kalevan neuvola", "Kalevan lastenneuvola")


def test_a_column_left_out_leaves_existing_fields_as_they_are_and_new_ones_empty(org: Organisation) -> None:
    imported(org)
    text = "code,kind,name_fi,parent\nhervanta-tk,unit,Hervannan sote-keskus,pirha-perus\nx-1,unit,Uusi,pirha-suun\n"
    plan = dry_run(org, text)
    assert plan.lines[0].changes == {"name_fi": ("Hervannan terveysasema", "Hervannan sote-keskus")}
    apply_import(plan, text, org, "it-admin")
    tree = org.tree()
    kept = tree.by_code["hervanta-tk"]
    assert (kept.name_sv, kept.oid, kept.target, kept.misuse_interval_s) == (
        "Hervanta hälsostation",
        "1.2.246.10.2048198.10.1",
        40,
        30.0,
    )
    new = tree.by_code["x-1"]
    assert (new.name_sv, new.oid, new.service_type, new.target) == ("", None, None, None)


def test_an_empty_cell_in_a_present_column_empties_the_field(org: Organisation) -> None:
    imported(org)
    text = "kind,code,name_fi,oid,target\nunit,hervanta-tk,Hervannan terveysasema,,\n"
    plan = dry_run(org, text)
    assert plan.lines[0].changes == {"oid": ("1.2.246.10.2048198.10.1", None), "target": (40, None)}
    apply_import(plan, text, org, "it-admin")
    assert (org.tree().by_code["hervanta-tk"].oid, org.tree().by_code["hervanta-tk"].target) == (None, None)


def test_a_semicolon_separated_file_with_a_bom_as_finnish_excel_writes_it_works(org: Organisation) -> None:
    rows = [line.split(",") for line in COUNTY.split("\n")]
    rows[0] = [h.upper() for h in rows[0]]  # column names are case-insensitive
    text = "\ufeff" + "\r\n".join(";".join(cells) for cells in rows).replace(";2.5;", ";2,5;") + "\r\n;;;;;;;;;;\r\n"
    plan = dry_run(org, text)
    assert plan.ok and plan.added == 8, errors(plan)
    apply_import(plan, text, org, "it-admin")
    assert org.tree().by_code["ylojarvi-tk"].misuse_interval_s == 2.5  # a decimal comma
    assert org.tree().by_code["pirha"].name_sv == "Birkalands välfärdsområde"
    assert dry_run(org, COUNTY).unchanged == 8  # the same organisation as the comma file


# -- refusals: every error names its line and column, and nothing is stored -----------------------

BAD = {
    "oid check digit": ("1.2.246.10.2048198.10.1", "1.2.246.10.2048197.10.1", 5, "oid", "check digit"),
    "unknown service type": ("child_health", "dentist", 6, "service_type", "write one of health_centre"),
    "unit under a region": ("tesoma-hammas,pirha-suun,", "tesoma-hammas,pirha,", 8, "parent", "belongs under an area"),
    "unknown parent": ("tesoma-hammas,pirha-suun,", "tesoma-hammas,nowhere,", 8, "parent", "no area 'nowhere'"),
    "duplicate code": ("kaleva-neuvola,pirha-perus", "hervanta-tk,pirha-perus", 6, "code", "on line 5 already"),
    "bad time zone": ("Europe/Mariehamn", "Europe/Tampere", 7, "tz", "such as Europe/Helsinki"),
    "target 150": (",-10", ",150", 7, "target", "from -100 to 100, e.g. 40"),
    "misuse interval": (",30,40", ",3601,40", 5, "misuse_interval_s", "0–3600"),
    "no Finnish name": ("Kalevan neuvola", "", 6, "name_fi", "e.g. Hervannan terveysasema"),
    "long name": ("Kalevan neuvola", "k" * 201, 6, "name_fi", "at most 200 characters"),
    "unknown kind": ("unit,tesoma-hammas", "clinic,tesoma-hammas", 8, "kind", "region, area, unit or location"),
    "bad code": ("unit,tesoma-hammas", "unit,tesoma hammas", 8, "code", "letters, digits"),
    "time zone on an area": ("Oral health care,,,,,", "Oral health care,,,Europe/Helsinki,,", 4, "tz", "only units"),
    "parent on a region": ("region,pirha,,", "region,pirha,pirha-suun,", 2, "parent", "leave parent empty"),
    "too many cells": ("Primary health care,,,,,", "Primary health care,,,,,,", 3, "column count", "double quotes"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_bad_value_is_an_error_naming_line_and_column_and_apply_refuses_it(org: Organisation, case: str) -> None:
    old, new, line, column, hint = BAD[case]
    text = COUNTY.replace(old, new, 1)
    assert text != COUNTY
    before = state(org)
    plan = dry_run(org, text)
    assert not plan.ok
    bad = next(x for x in plan.lines if x.action == "error")  # the nodes under it may fail too
    assert bad.line == line and bad.error is not None and bad.changes == {}
    prefix = f"line {line}, {column}" if column == "column count" else f"line {line}, column {column}: "
    assert bad.error.startswith(prefix), bad.error
    assert hint in bad.error
    with pytest.raises(OrgError, match="errors"):
        apply_import(plan, text, org, "it-admin")
    assert state(org) == before


@pytest.mark.parametrize(
    ("header", "hint"),
    [
        ("kind,code,parent,name_sv", "the required column name_fi is missing"),
        ("kind,code,name_fi,name_se", "unknown column 'name_se'"),
        ("kind,code,name_fi,Name_FI", "column name_fi is there twice"),
    ],
)
def test_a_header_without_its_required_columns_is_an_error_on_line_1(org: Organisation, header: str, hint: str) -> None:
    text = f"{header}\nregion,pirha,Pirkanmaa,x\n"
    plan = dry_run(org, text)
    assert [(x.line, x.action) for x in plan.lines] == [(1, "error")]
    assert plan.lines[0].error is not None and hint in plan.lines[0].error
    assert "kind, code, parent, name_fi" in plan.lines[0].error  # what a good header has
    with pytest.raises(OrgError):
        apply_import(plan, text, org, "it-admin")
    assert org.tree().nodes == {}


def test_a_file_where_one_row_fails_leaves_the_database_exactly_as_before(org: Organisation) -> None:
    imported(org)
    before = state(org)
    text = (
        COUNTY.replace("Hervannan terveysasema", "Hervannan sote-keskus")
        .replace(",2.5,-10", ",2.5,-20")
        .replace("Europe/Mariehamn", "Europe/Helsinki")
        + "\nunit,lielahti-tk,pirha-perus,Lielahden terveysasema,,,,,,,"
        + "\nunit,lamminpaa-tk,pirha-perus,Lamminpään terveysasema,,,1.2.246.10.2048197.10.9,,,,"
    )
    plan = dry_run(org, text)
    assert (plan.added, plan.changed) == (1, 2) and [x.line for x in plan.lines if x.action == "error"] == [11]
    with pytest.raises(OrgError):
        apply_import(plan, text, org, "it-admin")
    assert state(org) == before


def test_a_failure_midway_through_applying_stores_nothing(org: Organisation, monkeypatch: pytest.MonkeyPatch) -> None:
    imported(org)
    before = state(org)
    text = COUNTY + "\nunit,lielahti-tk,pirha-perus,Lielahden terveysasema,,,,,,," + "\nregion,kanta,,Kanta-Häme,,,,,,,"
    plan = dry_run(org, text.replace("Pääaula", "Aula"))
    assert (plan.added, plan.changed) == (2, 1)
    real_add = org.add

    def add_then_fail(actor: str, kind: str, *args: Any, **kwargs: Any) -> OrgNode:
        if kind == "region":  # the second add, after the first add and the change are written
            raise RuntimeError("the database went away")
        return real_add(actor, kind, *args, **kwargs)

    monkeypatch.setattr(org, "add", add_then_fail)
    with pytest.raises(RuntimeError):
        apply_import(plan, text.replace("Pääaula", "Aula"), org, "it-admin")
    assert state(org) == before


def test_apply_refuses_when_the_organisation_changed_since_the_dry_run(org: Organisation) -> None:
    imported(org)
    text = COUNTY.replace("Pääaula", "Aula")
    plan = dry_run(org, text)
    assert plan.changed == 1
    node = org.tree().by_code["hervanta-tk"]
    org.update("someone-else", node.id, name_fi="Hervannan sote-keskus")
    before = state(org)
    with pytest.raises(OrgError, match="changed since the dry run"):
        apply_import(plan, text, org, "it-admin")
    with pytest.raises(OrgError, match="changed since the dry run"):  # another file than the one checked
        apply_import(dry_run(org, text), COUNTY, org, "it-admin")
    assert state(org) == before


def test_import_neither_moves_nor_rekinds_nor_touches_archived_nodes(org: Organisation) -> None:
    imported(org)
    org.set_archived("it-admin", org.tree().by_code["hervanta-aula"].id, True)
    before = state(org)
    text = COUNTY.replace("kaleva-neuvola,pirha-perus", "kaleva-neuvola,pirha-suun").replace(
        "area,pirha-suun,pirha", "unit,pirha-suun,pirha"
    )
    plan = dry_run(org, text)
    by_line = {x.line: x.error or "" for x in plan.lines}
    assert by_line[4] == "line 4, column kind: pirha-suun is an existing area: write area (import keeps kinds)"
    assert by_line[6].startswith("line 6, column parent: kaleva-neuvola is under pirha-perus: write pirha-perus")
    assert "does not move" in by_line[6]
    assert by_line[9].startswith("line 9, column code: hervanta-aula is archived: restore it first")
    assert not plan.ok
    with pytest.raises(OrgError):
        apply_import(plan, text, org, "it-admin")
    assert state(org) == before


def test_a_parent_later_in_the_file_is_an_error_asking_for_parents_first(org: Organisation) -> None:
    rows = COUNTY.split("\n")
    rows.insert(4, rows.pop(8))  # the location before its unit
    plan = dry_run(org, "\n".join(rows))
    assert [(x.line, x.action) for x in plan.lines if x.action == "error"] == [(5, "error")]
    assert plan.lines[3].error == (
        "line 5, column parent: 'hervanta-tk' is on line 6, after this one: put parents before their children"
    )


def test_a_stored_parent_of_the_wrong_kind_or_archived_is_an_error(org: Organisation) -> None:
    imported(org)
    org.set_archived("it-admin", org.tree().by_code["hervanta-aula"].id, True)
    org.set_archived("it-admin", org.tree().by_code["hervanta-tk"].id, True)
    before = state(org)
    text = "kind,code,parent,name_fi\nunit,x-1,pirha,Uusi\nlocation,x-2,hervanta-tk,Aula\nunit,x-3,pirha-suun,Hyvä\n"
    plan = dry_run(org, text)
    assert [x.error for x in plan.lines] == [
        "line 2, column parent: pirha is a region, and a unit belongs under an area:"
        " write the code of an existing area or of one on an earlier line",
        "line 3, column parent: hervanta-tk is archived: restore it first, or write another unit's code",
        None,
    ]
    with pytest.raises(OrgError):
        apply_import(plan, text, org, "it-admin")
    assert state(org) == before


def test_a_child_of_a_row_with_an_error_says_to_fix_that_row(org: Organisation) -> None:
    plan = dry_run(org, COUNTY.replace("Perusterveydenhuolto", ""))
    assert plan.lines[1].error is not None and plan.lines[1].error.startswith("line 3, column name_fi")
    assert plan.lines[3].error == "line 5, column parent: pirha-perus on line 3 has an error: fix that line first"


# -- hostile and malformed input --------------------------------------------------------------------


def test_markup_and_sql_in_names_are_stored_verbatim(org: Organisation) -> None:
    name = "<script>alert('x')</script> & \"Ö\"'; DROP TABLE org_nodes; --"
    formula = '=HYPERLINK("http://evil";"Kallio")'
    quoted = name.replace('"', '""')
    text = f'{HEADER}\nregion,r1,,"{quoted}","{formula.replace(chr(34), chr(34) * 2)}",{"é" * 200},,,,,\n'
    imported(org, text)
    node = org.tree().by_code["r1"]
    assert (node.name_fi, node.name_sv, node.name_en) == (name, formula, "é" * 200)
    assert dry_run(org, text).unchanged == 1


@pytest.mark.parametrize(
    ("cell", "column"),
    [
        ('"Kallion\nterveysasema"', "name_fi"),
        ("Kallio\x00", "name_fi"),
        ("Kallio\u202eoisa", "name_fi"),
        ("Kallion terveysasem\ufffd", "name_fi"),
        ("Kallio\ud800", "name_fi"),
    ],
    ids=["line break", "NUL", "direction override", "replacement character", "lone surrogate"],
)
def test_control_and_invisible_characters_are_rejected(org: Organisation, cell: str, column: str) -> None:
    text = f"kind,code,name_fi\nregion,r1,{cell}\nregion,r2,Toinen\n"
    plan = dry_run(org, text)
    assert plan.lines[0].error is not None
    assert plan.lines[0].error.startswith(f"line 2, column {column}: holds a control"), plan.lines[0].error
    assert plan.lines[1].line == 3 + cell.count("\n")  # physical lines, as the editor shows them
    with pytest.raises(OrgError):
        apply_import(plan, text, org, "it-admin")
    assert org.tree().nodes == {}


@pytest.mark.parametrize(
    ("text", "line", "hint"),
    [
        ('kind,code,name_fi\nregion,r1,"Kallio\nregion,r2,Toinen\n', 2, "not well-formed CSV"),
        ('kind,code,name_fi\nregion,r1,"Kallio"x\n', 2, "in double quotes"),
        (f"kind,code,name_fi\nregion,r1,{'x' * 200_000}\n", 2, "not well-formed CSV"),
        ("", 1, "the file is empty"),
    ],
    ids=["unclosed quote", "text after a quote", "huge cell", "empty"],
)
def test_malformed_csv_is_an_error_line_not_an_exception(text: str, line: int, hint: str) -> None:
    plan = plan_import(text, Tree([]), {})
    bad = plan.lines[-1]
    assert not plan.ok and bad.line == line and bad.error is not None and hint in bad.error
    assert bad.error.startswith(f"line {line}")


def test_at_most_5000_rows_are_taken() -> None:
    rows = [f"region,r{n},Alue {n}" for n in range(5000)]
    assert plan_import("kind,code,name_fi\n" + "\n".join(rows), Tree([]), {}).added == 5000
    plan = plan_import("kind,code,name_fi\n" + "\n".join([*rows, "region,r-extra,Liikaa"]), Tree([]), {})
    assert plan.added == 5000 and plan.lines[-1].error == "line 5002: more than 5,000 rows: split the file"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from(["region", "unit", "r1", "a1", '"', ";", ",", "\n", "", "Ä", "1.2.246.10.2048198.10.1"])
        ),
        max_size=6,
    ).map(lambda rows: "\n".join(",".join(r) for r in rows)),
    st.text(max_size=60),
)
def test_any_text_gives_a_plan_never_an_exception(rows: str, noise: str) -> None:
    for text in (HEADER + "\n" + rows, "kind;code;parent;name_fi\n" + rows + noise, noise, rows):
        plan = plan_import(text, Tree([]), {})
        assert all(x.line >= 1 and (x.action == "error") == (x.error is not None) for x in plan.lines)
