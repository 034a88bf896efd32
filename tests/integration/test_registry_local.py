"""The local registry adapter and its CSV import (issue 3, "Registry adapters")."""

from __future__ import annotations

import json
from pathlib import Path

from common.db import db
from realname.idnumbers import check_character
from realname.registry import LocalRegistry, Outcome

NUMBER = "11010519491231002X"


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "registry.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_import_and_verify(app, services, tmp_path):
    deceased = "310101198001010" + "03"
    deceased += check_character(deceased)
    path = _csv(
        tmp_path,
        "name,id_number,phone,status\n"
        f"张三,{NUMBER.lower()},+86 138 0013 8000,alive\n"
        f"李四,{deceased},,deceased\n"
        "王五,110105194912310021,,alive\n"  # bad checksum
        "Bob,11010519491231002X,,alive\n"  # not a Chinese name
        f"赵六,{NUMBER},12345,alive\n",  # bad phone
    )
    result = app.test_cli_runner().invoke(args=["realname", "import-registry", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["imported"], report["rejected"]) == (2, 3)
    assert [r["reason"] for r in report["rejected_lines"]] == ["checksum", "characters", "phone"]
    assert [r["line"] for r in report["rejected_lines"]] == [4, 5, 6]

    registry = LocalRegistry(db.session, services.p.hasher)
    assert registry.verify("张三", NUMBER) is Outcome.MATCH
    assert registry.verify("张四", NUMBER) is Outcome.MISMATCH
    assert registry.verify("李四", deceased) is Outcome.DECEASED
    other = "110101199001011234"[:17]
    assert registry.verify("张三", other + check_character(other)) is Outcome.NOT_FOUND
    assert registry.verify_phone("张三", NUMBER, "13800138000") is Outcome.MATCH
    assert registry.verify_phone("张三", NUMBER, "13900000000") is Outcome.MISMATCH
    assert registry.verify_phone("李四", deceased, "13800138000") is Outcome.DECEASED


def test_registry_stores_no_clear_text(app, services, tmp_path):
    path = _csv(tmp_path, f"name,id_number\n张三,{NUMBER}\n")
    assert app.test_cli_runner().invoke(args=["realname", "import-registry", str(path)]).exit_code == 0
    rows = db.session.execute(db.text("SELECT id_index, name_hash, phone_hash FROM realname_registry")).all()
    assert len(rows) == 1
    dump = " ".join(str(v) for v in rows[0])
    assert NUMBER not in dump and "张三" not in dump and "19491231" not in dump


def test_reimport_updates_instead_of_duplicating(app, services, tmp_path):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["realname", "import-registry", str(_csv(tmp_path, f"name,id_number\n张三,{NUMBER}\n"))]).exit_code == 0
    again = _csv(tmp_path, f"name,id_number,status\n张三丰,{NUMBER},alive\n")
    result = runner.invoke(args=["realname", "import-registry", str(again), "--json"])
    assert json.loads(result.output)["updated"] == 1
    registry = LocalRegistry(db.session, services.p.hasher)
    assert registry.verify("张三丰", NUMBER) is Outcome.MATCH
    assert registry.verify("张三", NUMBER) is Outcome.MISMATCH


def test_bad_csv_header_exits_non_zero_and_writes_nothing(app, tmp_path):
    path = _csv(tmp_path, f"who,number\n张三,{NUMBER}\n")
    result = app.test_cli_runner().invoke(args=["realname", "import-registry", str(path)])
    assert result.exit_code == 2
    assert "CSV" in result.output
    assert db.session.execute(db.text("SELECT count(*) FROM realname_registry")).scalar() == 0


def test_generated_records_are_valid_and_importable(app, services, tmp_path):
    out = tmp_path / "synthetic.csv"
    runner = app.test_cli_runner()
    gen = runner.invoke(args=["realname", "generate-registry", "--count", "300", "--out", str(out), "--json"])
    assert gen.exit_code == 0 and json.loads(gen.output)["written"] == 300
    result = runner.invoke(args=["realname", "import-registry", str(out), "--json"])
    report = json.loads(result.output)
    assert report["rejected"] == 0 and report["imported"] == 300
    # Same seed, same records.
    out2 = tmp_path / "again.csv"
    runner.invoke(args=["realname", "generate-registry", "--count", "300", "--out", str(out2)])
    assert out.read_text(encoding="utf-8") == out2.read_text(encoding="utf-8")


def test_rotate_keys_command_reencrypts_everything(app, services, tmp_path):
    from config.app import create_app
    from config.settings import Settings
    from realname.service import parse_identity_input
    from tests.conftest import make_settings

    acct = services.accounts.create(username="rotator", password="a long enough secret", name="王五",
                                    phone="13800000001")
    name, rid = parse_identity_input("张三", NUMBER, today=services.p.clock.now().date())
    services.realname.bind_identity(acct.id, name, rid)
    db.session.commit()
    base: Settings = app.config["YIWANG_SETTINGS"]
    rotated_settings = make_settings(
        tmp_path, base.database_url,
        data_keys="new:" + "bmV3LWRhdGEta2V5LW5ldy1kYXRhLWtleS1uZXctMzI," + base.data_keys.get_secret_value(),
    )
    rotated = create_app(rotated_settings, store=services.p.store, clock=services.p.clock)
    with rotated.app_context():
        result = rotated.test_cli_runner().invoke(args=["realname", "rotate-keys", "--batch", "1", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["reencrypted"] >= 2
        again = rotated.test_cli_runner().invoke(args=["realname", "rotate-keys", "--json"])
        assert json.loads(again.output)["reencrypted"] == 0
        svc = rotated.extensions["yiwang.provider"].services(db.session)
        identity = svc.realname.identity_of(acct.id)
        assert identity.name_enc.startswith("v1.new.") and svc.realname.id_number_of(identity) == NUMBER
        account = svc.accounts.get(acct.id)
        assert account.name_enc.startswith("v1.new.") and svc.accounts.name_of(account) == "王五"
