"""``liutong`` — the command line. Every command builds its runtime through ``bootstrap`` and
runs in one transaction; a ``LiutongError`` is printed with its code and both messages."""

from __future__ import annotations

import logging
import secrets
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from liutong.bootstrap import Runtime, bootstrap
from liutong.errors import LiutongError

app = typer.Typer(help="六通 Liutong — 多业态大会员中台", no_args_is_help=True, pretty_exceptions_enable=False)
ledger_app = typer.Typer(help="账本 / ledger", no_args_is_help=True)
tenant_app = typer.Typer(help="租户 / tenants", no_args_is_help=True)
tiers_app = typer.Typer(help="会员等级 / tiers", no_args_is_help=True)
points_app = typer.Typer(help="积分夜间任务，立即运行 / the nightly points runs, now", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
app.add_typer(tenant_app, name="tenant")
app.add_typer(tiers_app, name="tiers")
app.add_typer(points_app, name="points")
console = Console()


def _runtime() -> Runtime:
    return bootstrap()


def _migrate(runtime: Runtime) -> str | None:
    from liutong.migrate import current, upgrade

    upgrade(runtime.engine)
    return current(runtime.engine)


@app.command()
def migrate() -> None:
    """把数据库结构升级到最新 / upgrade the database schema to the latest revision."""
    runtime = _runtime()
    revision = _migrate(runtime)
    console.print(f"[green]数据库已是最新[/green] schema revision {revision} ({runtime.engine.url.render_as_string()})")


@app.command()
def serve(
    demo: Annotated[bool, typer.Option(help="迁移数据库并确保演示租户存在 / migrate and seed the demo tenant")] = False,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    worker: Annotated[bool, typer.Option(help="在本进程内运行后台任务 / run background jobs in this process")] = True,
) -> None:
    """启动 HTTP 服务 / run the HTTP API (OpenAPI at /docs)."""
    import uvicorn

    from liutong.kit import logmask
    from liutong.web.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logmask.install()
    runtime = _runtime()
    if demo:
        from liutong.demo import seed_demo

        _migrate(runtime)
        with runtime.transaction() as tx:
            info = seed_demo(tx)
    host = host or runtime.settings.host
    port = port or runtime.settings.port
    if demo:
        key = info.pop("operator_key")
        info["运营密钥 / operator key"] = key
        info["试一试 / try"] = (f"curl -H 'Authorization: Bearer {key}' "
                               f"'http://{host}:{port}/v1/members/lookup?kind=phone&value=13800000001'")
        _print_demo(info)
    console.print(f"API 文档 / docs: http://{host}:{port}/docs")
    config = uvicorn.Config(create_app(runtime), host=host, port=port, log_level="info")
    server = uvicorn.Server(config)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logmask.install(logging.getLogger(name))
    background = None
    if worker:
        from liutong.jobs.worker import Worker

        background = Worker(runtime).start()
    try:
        server.run()
    finally:
        if background is not None:
            background.stop()


@app.command("worker")
def worker_command(
    worker_id: Annotated[str | None, typer.Option(help="默认：主机名:进程号:随机后缀 / default host:pid:random")] = None,
    poll_seconds: Annotated[float, typer.Option(min=0.05, help="空闲时的轮询间隔 / pause when idle")] = 1.0,
    once: Annotated[bool, typer.Option(help="只运行一轮后退出 / one pass, then exit")] = False,
) -> None:
    """运行后台任务并分发发件箱事件 / run due jobs and dispatch the outbox until stopped.

    SIGINT or SIGTERM stops it after the job in hand; a second signal stops it at once.
    """
    import signal

    from liutong.jobs.worker import Worker
    from liutong.kit import logmask

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logmask.install()
    runtime = _runtime()
    loop = Worker(runtime, worker_id=worker_id, poll_seconds=poll_seconds)
    if once:
        loop.schedule()
        handled = loop.run_once()
        runtime.dispose()
        console.print(f"已处理 {handled} 项 / handled {handled} events and jobs")
        return

    def _stop(_signum, _frame) -> None:
        if loop.stopping:
            raise KeyboardInterrupt
        loop.stop()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    console.print(f"后台任务进程 / worker {loop.worker_id}")
    loop.run_forever()
    runtime.dispose()


def _print_demo(info: dict) -> None:
    console.rule("演示租户 / demo tenant")
    for k, v in info.items():
        console.print(f"{k}: [bold]{v}[/bold]", soft_wrap=True)
    console.rule()


@ledger_app.command("verify")
def ledger_verify(tenant: Annotated[int | None, typer.Option(help="只检查一个租户 / one tenant only")] = None) -> None:
    """检查全部账本不变量；有违反时以非零状态退出 / check every ledger invariant."""
    from liutong.ledger.verify import verify
    from liutong.organisation.service import get_tenant

    runtime = _runtime()
    with runtime.transaction() as tx:
        if tenant is not None:
            get_tenant(tx, tenant)
        checks = verify(tx.session, tenant)
    table = Table(title="账本校验 / ledger verify")
    table.add_column("检查 / check")
    table.add_column("结果 / result")
    table.add_column("说明 / description")
    for c in checks:
        table.add_row(c.name, "[green]OK[/green]" if c.ok else f"[red]{len(c.violations)} 处违反[/red]", c.description)
    console.print(table)
    broken = [c for c in checks if not c.ok]
    for c in broken:
        console.print(f"[red]✗ {c.name}[/red]")
        for v in c.violations:
            console.print(f"    {v}")
    if broken:
        raise typer.Exit(1)
    console.print("[green]全部不变量成立 / every invariant holds[/green]")


def _local_time(value: str | None, runtime: Runtime):
    """A date or date-time on the command line, read in the tenant time zone."""
    from datetime import datetime

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not a date or date-time: {value}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=runtime.tz)


@tiers_app.command("review")
def tiers_review(
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="复核截至该时刻已结束的最近一个周期，默认现在；如 2027-01-01 即 2026 年度 / "
                        "review the latest period ended by then (local time), default now")] = None,
    tenant: Annotated[str | None, typer.Option(help="租户编码，默认全部租户 / tenant code, default every tenant")] = None,
    chunk: Annotated[int, typer.Option(min=100, max=200_000, help="每个事务复核的会员数 / members per transaction")] = 10_000,
) -> None:
    """等级周期复核：保级未达标者降级，到期的人工调整清除 / run the tier period review.

    Idempotent and resumable: a period already reviewed changes nothing; one that stopped half
    way goes on from where it was.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from sqlalchemy import select

    from liutong.members import tier_review
    from liutong.organisation.models import Tenant
    from liutong.organisation.service import tenant_by_code

    runtime = _runtime()
    moment = _local_time(as_of, runtime)
    with runtime.transaction() as tx:
        if tenant is not None:
            tenants = [(tenant_by_code(tx, tenant).id, tenant)]
        else:
            tenants = [tuple(r) for r in tx.session.execute(select(Tenant.id, Tenant.code).order_by(Tenant.id))]
    for tenant_id, code in tenants:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as bar:
            task = bar.add_task(f"{code}", total=None)

            def started(p, left, task=task, code=code, bar=bar):
                bar.update(task, total=p.reviewed + left, completed=p.reviewed,
                           description=f"{code} {p.period}（截至 / as of {p.as_of.astimezone(runtime.tz):%Y-%m-%d %H:%M}）")

            def advanced(p, task=task, bar=bar):
                bar.update(task, completed=p.reviewed)

            done = tier_review.run(runtime, tenant_id=tenant_id, as_of=moment, limit=chunk, on_start=started,
                                   on_chunk=advanced)
        console.print(f"{code} {done.period}: 复核 / reviewed {done.reviewed:,}，降级 / demoted {done.demoted:,}，"
                      f"清除到期调整 / overrides cleared {done.overrides_cleared:,}")
    runtime.dispose()


@tenant_app.command("create")
def tenant_create(
    code: Annotated[str, typer.Argument(help="租户编码，如 xihu-group")],
    name: Annotated[str, typer.Argument(help="租户名称")],
    admin: Annotated[str | None, typer.Option(help="运营管理员用户名，默认 admin@<code> / operator admin username")] = None,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)] = "",
) -> None:
    """创建租户、运营管理员和一把运营 API 密钥 / create a tenant, its admin and an API key."""
    from liutong.organisation import service
    from liutong.organisation.models import Role
    from liutong.organisation.schemas import ApiKeyCreate, StaffCreate, TenantCreate

    runtime = _runtime()
    run = f"cli:{secrets.token_hex(8)}"  # each invocation is a new request
    with runtime.transaction() as tx:
        tenant = service.create_tenant(tx, data=TenantCreate(code=code, name=name), key=f"{run}:tenant")
        service.create_staff(tx, tenant_id=tenant.id, key=f"{run}:admin",
                             data=StaffCreate(username=admin or f"admin@{code}", display_name="运营管理员", password=password,
                                              role=Role.operator_admin))
        issued = service.issue_api_key(tx, tenant_id=tenant.id, key=f"{run}:key",
                                       data=ApiKeyCreate(name="operator", role=Role.operator_admin))
    console.print(f"租户 / tenant #{tenant.id} {tenant.name}")
    console.print(f"运营 API 密钥（只显示一次）/ operator API key (shown once): [bold]{issued.key}[/bold]")


@app.command("platform-key")
def platform_key(name: Annotated[str, typer.Option()] = "platform") -> None:
    """签发平台管理员密钥（可创建租户）/ issue a platform admin key."""
    from liutong.organisation import service
    from liutong.organisation.models import Role
    from liutong.organisation.schemas import ApiKeyCreate

    runtime = _runtime()
    with runtime.transaction() as tx:
        issued = service.issue_api_key(tx, tenant_id=None, key=f"cli:platform:{secrets.token_hex(8)}",
                                       data=ApiKeyCreate(name=name, role=Role.platform_admin))
    console.print(f"平台密钥（只显示一次）/ platform key (shown once): [bold]{issued.key}[/bold]")


# --- the nightly points runs, for operators -------------------------------------------------------

TenantOption = Annotated[int | None, typer.Option("--tenant", help="只处理一个租户 / one tenant only (default: all)")]
ChunkOption = Annotated[int, typer.Option(min=1, help="每批会员数 / members per chunk")]
AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="日期（当地零点）或时间，默认今天零点 / a date (its local midnight) or an ISO time; "
                                 "default today's midnight, the same run as tonight's job"),
]


def _tenants(tx, tenant: int | None) -> list[tuple[int, str, object]]:
    """(id, name, time zone) of one tenant or of all."""
    from zoneinfo import ZoneInfo

    from sqlalchemy import select

    from liutong.organisation.models import Tenant
    from liutong.organisation.service import get_tenant

    if tenant is not None:
        get_tenant(tx, tenant)
    stmt = select(Tenant.id, Tenant.name, Tenant.timezone).order_by(Tenant.id)
    if tenant is not None:
        stmt = stmt.where(Tenant.id == tenant)
    return [(t.id, t.name, ZoneInfo(t.timezone or tx.settings.timezone)) for t in tx.session.execute(stmt)]


def _as_of(value: str | None, tz, now):
    """A date means its local midnight (the nightly run); a time without a zone is local."""
    from datetime import date, datetime

    from liutong.ledger.batch import local_midnight

    if value is None:
        return local_midnight(now.astimezone(tz).date(), tz)
    try:
        return local_midnight(date.fromisoformat(value), tz)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not a date or ISO time: {value}", param_hint="--as-of") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)


def _walk(runtime: Runtime, *, label: str, total: int | None, step) -> object:
    """Run ``step(tx, after)`` chunk after chunk, one transaction each, with a progress bar;
    members skipped because a purchase held them get further passes, a second apart."""
    import time

    from liutong.ledger.batch import Totals
    from liutong.ledger.tasks import MAX_PASSES

    totals = Totals()
    with _progress() as progress:
        bar = progress.add_task(label, total=total)
        for run in range(1, MAX_PASSES + 1):
            after: int | None = 0
            skipped = 0
            while after is not None:
                with runtime.transaction() as tx:
                    chunk = step(tx, after)
                totals.add(chunk)
                skipped += chunk.skipped
                progress.advance(bar, chunk.members)
                after = chunk.after
            totals.skipped = skipped
            if not skipped or run == MAX_PASSES:
                break
            progress.update(bar, description=f"{label} (pass {run + 1}: {skipped} held by purchases)")
            time.sleep(1)
    return totals


def _report(title: str, rows: list[tuple]) -> None:
    table = Table(title=title)
    table.add_column("租户 / tenant")
    table.add_column("时点 / as of")
    for column in ("会员 / members", "批次 / lots", "积分 / points", "未处理 / left"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(str(v) if not isinstance(v, int) else f"{v:,}" for v in row))
    console.print(table)


def _lot_run(kind: str, tenant: int | None, as_of: str | None, chunk: int) -> None:
    from liutong.ledger import batch

    runtime = _runtime()
    step_of = batch.expire_chunk if kind == "expire" else batch.vest_chunk
    with runtime.transaction() as tx:
        tenants = _tenants(tx, tenant)
    rows = []
    for tenant_id, name, tz in tenants:
        moment = _as_of(as_of, tz, runtime.clock())
        with runtime.transaction() as tx:
            due = batch.due_members(tx, tenant_id=tenant_id, as_of=moment, kind=kind)
        totals = _walk(runtime, label=f"{name} #{tenant_id}", total=due,
                       step=lambda tx, after: step_of(tx, tenant_id=tenant_id, as_of=moment, after=after,
                                                      members=chunk))
        rows.append((f"{name} #{tenant_id}", moment.astimezone(tz).isoformat(), totals.members, totals.lots,
                     totals.points, totals.skipped))
    _report("积分过期 / points expired" if kind == "expire" else "积分解冻 / points vested", rows)
    runtime.dispose()


@points_app.command("expire")
def points_expire(tenant: TenantOption = None, as_of: AsOfOption = None, chunk: ChunkOption = 5_000) -> None:
    """让到期积分过期（转入发行主体的过期账户）/ expire the points due, into each issuer's breakage.

    Posts what the nightly job posts, under the same keys: running it for a night the job
    already ran, or twice, posts nothing twice.
    """
    _lot_run("expire", tenant, as_of, chunk)


@points_app.command("vest")
def points_vest(tenant: TenantOption = None, as_of: AsOfOption = None, chunk: ChunkOption = 5_000) -> None:
    """解冻退款期已过的待生效积分 / make pending points whose refund window has passed spendable."""
    _lot_run("vest", tenant, as_of, chunk)


@points_app.command("remind")
def points_remind(
    tenant: TenantOption = None,
    on: Annotated[str | None, typer.Option(help="提醒日期，默认今天 / the day reminding, default today")] = None,
    chunk: ChunkOption = 5_000,
) -> None:
    """发送积分到期提醒（每个会员、到期日、提前天数只一次）/ remind members of points about to expire."""
    from datetime import date

    from liutong.ledger import batch
    from liutong.ledger.tasks import remind_days_before

    runtime = _runtime()
    with runtime.transaction() as tx:
        tenants = _tenants(tx, tenant)
    rows = []
    for tenant_id, name, tz in tenants:
        day = date.fromisoformat(on) if on else runtime.clock().astimezone(tz).date()
        with runtime.transaction() as tx:
            days_before = remind_days_before(tx, tenant_id)
        totals = _walk(runtime, label=f"{name} #{tenant_id}", total=None,
                       step=lambda tx, after: batch.remind_chunk(tx, tenant_id=tenant_id, on=day, tz=tz, after=after,
                                                                 days_before=days_before, members=chunk))
        rows.append((f"{name} #{tenant_id}", f"{day} {sorted(days_before, reverse=True)}", totals.members,
                     totals.lots, totals.points, totals.skipped))
    _report("积分到期提醒 / expiry reminders", rows)
    runtime.dispose()


@points_app.command("schedule")
def points_schedule() -> None:
    """为每个租户安排今明两天的夜间任务（幂等）/ schedule today's and tomorrow's nightly runs (idempotent)."""
    from liutong.jobs.service import run_schedulers
    from liutong.jobs.worker import load_handlers

    load_handlers()
    runtime = _runtime()
    scheduled = run_schedulers(runtime)
    runtime.dispose()
    console.print(f"已安排 {scheduled} 项 / scheduled {scheduled} new jobs")


def main() -> None:
    try:
        app()
    except LiutongError as err:
        console.print(f"[red]错误 {err.code}[/red]: {err.message('zh')}\n[dim]{err.message('en')}[/dim]")
        sys.exit(2)


if __name__ == "__main__":
    main()
