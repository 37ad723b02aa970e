"""The command line as an operator runs it: migrate, create a tenant, verify the ledger."""

from __future__ import annotations

import sqlite3

import pytest
from typer.testing import CliRunner

from liutong.cli import app

runner = CliRunner()


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    db = tmp_path / "cli.db"
    monkeypatch.setenv("LIUTONG_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("LIUTONG_DATA_DIR", str(tmp_path))
    return db


def test_migrate_then_create_a_tenant_and_verify_a_healthy_ledger(cli_env):
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    from alembic.script import ScriptDirectory

    from liutong.migrate import alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() in result.output
    result = runner.invoke(app, ["tenant", "create", "xihu", "西湖文旅集团"], input="s3cret-pass\ns3cret-pass\n")
    assert result.exit_code == 0, result.output
    assert "lt_" in result.output
    result = runner.invoke(app, ["ledger", "verify"])
    assert result.exit_code == 0, result.output
    assert "every invariant holds" in result.output


def test_ledger_verify_exits_non_zero_and_names_the_broken_invariant(cli_env, tmp_path):
    from liutong.bootstrap import bootstrap
    from liutong.config import Settings
    from liutong.demo import seed_demo

    assert runner.invoke(app, ["migrate"]).exit_code == 0
    runtime = bootstrap(Settings(database_url=f"sqlite:///{cli_env}", data_dir=tmp_path))
    with runtime.transaction() as tx:
        seed_demo(tx)
    runtime.dispose()
    assert runner.invoke(app, ["ledger", "verify"]).exit_code == 0
    with sqlite3.connect(cli_env) as conn:
        conn.execute("UPDATE ledger_accounts SET balance = balance + 1 "
                     "WHERE id = (SELECT id FROM ledger_accounts WHERE kind = 'points' AND balance > 0 LIMIT 1)")
    result = runner.invoke(app, ["ledger", "verify"])
    assert result.exit_code == 1
    assert "cached_balances" in result.output and "lots_match_points" in result.output


def test_a_business_error_at_the_command_line_prints_its_code_in_both_languages(cli_env, capsys):
    from liutong.cli import main

    assert runner.invoke(app, ["migrate"]).exit_code == 0
    args = ["tenant", "create", "dup", "重复租户", "--password", "s3cret-pass"]
    assert runner.invoke(app, args).exit_code == 0
    import sys

    old = sys.argv
    sys.argv = ["liutong", *args]
    try:
        with pytest.raises(SystemExit) as exit_info:
            main()
    finally:
        sys.argv = old
    assert exit_info.value.code == 2
    out = capsys.readouterr().out
    assert "duplicate_code" in out and "already in use" in out and "已存在" in out


def test_verifying_an_unknown_tenant_is_a_coded_error(cli_env):
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    result = runner.invoke(app, ["ledger", "verify", "--tenant", "999"])
    assert result.exit_code != 0
    assert isinstance(result.exception, __import__("liutong.errors").errors.TenantNotFound)
