"""The CLI commands as a user runs them."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import mes

ORDERS_TOML = """
[[orders]]
id = "SO-1001"
priority = 2
due = 2026-12-01T17:00:00Z

[[orders.units]]
family = "nameplate"
[orders.units.options]
text = "ADA"
width_mm = 200

[[orders.units]]
family = "phone-stand"
[orders.units.options]
angle_deg = 70
"""

ORDERS_CSV = """order_id,family,priority,text,angle_deg,option.colour
SO-2001,nameplate,1,GRACE,,
SO-2001,phone-stand,1,,55,teal
SO-2002,sign,,HELLO,,
"""


def test_check_prints_a_summary_of_the_demo_plant():
    result = mes("check", "config")
    assert result.returncode == 0, result.stderr
    assert "OK: plant 'Demo plant', 7 cells, 4 product families" in result.stdout
    assert "route-profile > engrave-text? | fit-hanger > inspect" in result.stdout


def test_check_reports_every_error_with_file_line_and_key_and_exit_code_2(tmp_path):
    plant = tmp_path / "plant.toml"
    plant.write_text(
        '[plant]\nname = "x"\nproducts = "nowhere"\n\n'
        '[[cells]]\nname = "c1"\ncapabilities = ["print.fdm"]\n'
        '[cells.driver]\nkind = "teleporter"\n'
    )
    result = mes("check", str(plant))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{plant}:9: cells[0].driver.kind: unknown driver kind 'teleporter'" in result.stderr
    assert "products" in result.stderr and "nothing was changed" in result.stderr


def test_release_list_and_show_from_toml_and_csv(tmp_path, db):
    toml_file, csv_file = tmp_path / "orders.toml", tmp_path / "orders.csv"
    toml_file.write_text(ORDERS_TOML)
    csv_file.write_text(ORDERS_CSV)

    first = mes("order", "release", str(toml_file), db=db)
    assert first.returncode == 0, first.stderr
    assert "released order SO-1001" in first.stdout
    again = mes("order", "release", str(toml_file), db=db)
    assert "SO-1001 was already released with the same content; unchanged" in again.stdout
    csv = mes("order", "release", str(csv_file), db=db)
    assert csv.returncode == 0, csv.stderr
    assert "2 orders, 3 units released" in csv.stdout

    listed = json.loads(mes("order", "list", "--json", db=db).stdout)
    assert {o["id"]: o["units"] for o in listed} == {
        "SO-1001": {"released": 2},
        "SO-2001": {"released": 2},
        "SO-2002": {"released": 1},
    }
    table = mes("order", "list", db=db).stdout
    assert "SO-1001" in table and "2 released" in table

    shown = json.loads(mes("unit", "show", "SO-1001.1", "--json", db=db).stdout)
    assert shown["family"] == "nameplate"
    assert shown["options"] == {"material": "pla", "width_mm": 200, "text": "ADA"}
    assert [s["name"] for s in shown["steps"]] == ["print-base", "engrave-name", "inspect"]
    assert shown["steps"][0]["state"] == "ready"
    text = mes("unit", "show", "SO-2001.2", db=db).stdout
    assert "phone-stand" in text and "angle_deg=55" in text and "colour='teal'" in text


def test_a_bad_order_file_is_refused_whole_naming_file_line_order_unit_and_option(tmp_path, db):
    good = tmp_path / "good.toml"
    good.write_text(ORDERS_TOML)
    mes("order", "release", str(good), db=db)
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[orders]]\nid = "SO-3001"\n\n[[orders.units]]\nfamily = "nameplate"\n'
        "[orders.units.options]\nwidth_mm = 999\n\n"
        '[[orders.units]]\nfamily = "spaceship"\n'
    )
    result = mes("order", "release", str(bad), db=db)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert (
        f"{bad}:4: order SO-3001, orders[0].units[0]: options.width_mm: "
        "must be at most 240mm (got 999)"
    ) in result.stderr
    assert "unknown product family 'spaceship'" in result.stderr
    listed = json.loads(mes("order", "list", "--json", db=db).stdout)
    assert [o["id"] for o in listed] == ["SO-1001"]  # nothing of the bad file, nothing lost


def test_reusing_an_order_id_for_other_content_is_refused(tmp_path, db):
    first = tmp_path / "a.toml"
    first.write_text(ORDERS_TOML)
    mes("order", "release", str(first), db=db)
    changed = tmp_path / "b.toml"
    changed.write_text(ORDERS_TOML.replace("angle_deg = 70", "angle_deg = 60"))
    result = mes("order", "release", str(changed), db=db)
    assert result.returncode == 2
    assert "order SO-1001: an order with this id was already released with other content" in (
        result.stderr
    )


def test_unknown_unit_and_unreadable_file_are_clear_errors(tmp_path, db):
    missing = mes("unit", "show", "NOPE.1", db=db)
    assert missing.returncode == 1
    assert "no unit 'NOPE.1'" in missing.stderr and "Traceback" not in missing.stderr
    nofile = mes("order", "release", str(tmp_path / "none.toml"), db=db)
    assert nofile.returncode == 2 and "Traceback" not in nofile.stderr
    assert "none.toml" in nofile.stderr


def test_demo_runs_units_of_several_families_to_done_and_prints_a_json_summary(db):
    result = mes(
        "demo",
        "--headless",
        "--units",
        "12",
        "--speed",
        "5000",
        "--seed",
        "7",
        "--json",
        "--db",
        db,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["units"] == summary["done"] + summary["failed"] == 12
    assert len(summary["families"]) >= 2
    assert summary["makespan_s"] > 0 and summary["throughput_per_h"] > 0
    assert set(summary["utilisation"]) == {
        "printer-1",
        "printer-2",
        "printer-3",
        "router-1",
        "laser-1",
        "bench-1",
        "tester-1",
    }
    assert "released order DEMO-" in result.stdout

    cells = mes("cell", "list", db=db)
    assert cells.returncode == 0 and "printer-3" in cells.stdout
    unit = mes("unit", "show", f"{summary['order']}.1", db=db)
    assert unit.returncode == 0 and "done" in unit.stdout


def test_cell_times_reports_the_share_of_each_state(db):
    assert mes("demo", "--headless", "--units", "3", "--speed", "5000", "--db", db).returncode == 0
    result = mes("cell", "times", "--hours", "1", "--json", db=db)
    assert result.returncode == 0, result.stderr
    times = json.loads(result.stdout)
    assert set(times) >= {"printer-1", "router-1"}
    # Three units: which printer printed depends on the dispatch; the busiest did.
    printer = max(
        (times[p] for p in times if p.startswith("printer")), key=lambda t: t["executing"]
    )
    assert sum(v for k, v in printer.items() if k != "availability") == pytest.approx(
        3600, rel=0.01
    )
    assert printer["executing"] > 0 and 0 < printer["availability"] <= 1
