"""``liutong tiers review`` as an operator runs it at year end."""

from __future__ import annotations

from sqlalchemy import update
from typer.testing import CliRunner

from liutong.cli import app

runner = CliRunner()


def test_the_year_end_review_from_the_command_line_demotes_once_and_says_how_many(tmp_path, monkeypatch):
    from liutong.bootstrap import bootstrap
    from liutong.config import Settings
    from liutong.members.models import Member
    from tests.conftest import build_world, register

    db = tmp_path / "cli.db"
    monkeypatch.setenv("LIUTONG_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("LIUTONG_DATA_DIR", str(tmp_path))
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    runtime = bootstrap(Settings(database_url=f"sqlite:///{db}", data_dir=tmp_path))
    with runtime.transaction() as tx:
        world = build_world(tx, code="xihu")
        gold = [register(tx, world, f"1380000010{i}").id for i in range(3)]
        tx.session.execute(update(Member).where(Member.id.in_(gold)).values(tier_code="gold"))
    runtime.dispose()
    first = runner.invoke(app, ["tiers", "review", "--as-of", "2027-01-01", "--tenant", "xihu"])
    assert first.exit_code == 0, first.output
    assert "xihu 2026" in first.output and "demoted 3" in first.output
    again = runner.invoke(app, ["tiers", "review", "--as-of", "2027-01-01T08:00"])
    assert again.exit_code == 0, again.output
    assert "reviewed 3" in again.output and "demoted 3" in again.output  # the same review, already done
    bad = runner.invoke(app, ["tiers", "review", "--as-of", "new year"])
    assert bad.exit_code != 0
