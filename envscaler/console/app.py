"""The console's web app: server-rendered pages (Jinja2, autoescaped), htmx for the play page's actions, SSE
for the pool page. Everything an environment does happens in the pool's sandboxes, never here."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import escape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from envscaler.client.errors import EnvClientError
from envscaler.client.pool_client import AsyncPool
from envscaler.console import poolview
from envscaler.console.catalog import Catalog, code_css, source_of
from envscaler.console.diff import state_rows
from envscaler.console.forms import arguments_from_form, form_fields
from envscaler.console.guard import Guard
from envscaler.console.play import Play, PlayError, Plays
from envscaler.console.rollouts import Filters, Rollouts, checks_of, message_calls, shown_arguments
from envscaler.spec import Corpus, SpecError

HERE = Path(__file__).parent
LIST_LIMIT = 500  # trajectories listed at once on the rollouts page


@dataclass
class ConsoleConfig:
    pool: str
    corpus: Corpus
    trajectories: list[Path] = field(default_factory=list)
    metrics: str = ""  # the pool's Prometheus HOST:PORT, or a full URL
    token: str | None = None
    play_ttl: float = 30.0  # seconds a play page may go without a heartbeat before its lease is released
    refresh: float = 1.0  # seconds between pool updates on the pool page
    tool_schemas: str = "derived"
    look_up_images: bool = True


def metrics_url(metrics: str) -> str:
    if not metrics:
        return ""
    return metrics if "://" in metrics else f"http://{metrics}/metrics"


def templates() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v: f"{float(v):.1%}"
    env.filters["num"] = lambda v, digits=3: f"{float(v):.{digits}f}"
    return env


def create_app(config: ConsoleConfig) -> Any:
    jinja = templates()
    catalog = Catalog(config.corpus, config.tool_schemas)
    rollouts = Rollouts(config.trajectories)
    state: dict[str, Any] = {}
    url = metrics_url(config.metrics)

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        body = jinja.get_template(name).render(request=request, nav=name.split(".")[0].split("_")[0], **context)
        return HTMLResponse(body, status_code=status)

    def not_found(request: Request, what: str) -> HTMLResponse:
        return page(request, "error.html", 404, title="Not found", message=what)

    def plays() -> Plays:
        return state["plays"]

    # ------------------------------------------------------------ environments

    async def envs_list(request: Request) -> Response:
        query = request.query_params.get("q", "")
        rows = catalog.rows(query)
        context = {"rows": rows, "q": query, "images": catalog.images, "total": len(config.corpus.envs)}
        if request.headers.get("hx-request") and request.headers.get("hx-target") == "env-rows":
            return page(request, "envs_rows.html", **context)
        return page(request, "envs.html", **context)

    async def env_page(request: Request) -> Response:
        env_id = request.path_params["env_id"]
        try:
            spec = config.corpus.env(env_id)
        except SpecError as exc:
            return not_found(request, str(exc))
        tools, tools_error = catalog.tools(env_id)
        tool_rows = [(t["function"], form_fields(t["function"].get("parameters"))) for t in tools]
        return page(request, "env.html", spec=spec, tools=tool_rows, tools_error=tools_error,
                    scenarios=list(config.corpus.scenarios_of(env_id).values()), source=source_of(spec),
                    image=catalog.image(env_id))

    async def code_style(request: Request) -> Response:
        return PlainTextResponse(code_css(), media_type="text/css")

    # ------------------------------------------------------------ play

    def play_context(play: Play) -> dict[str, Any]:
        tools, _ = catalog.tools(play.env_id)
        scenario = config.corpus.scenarios_of(play.env_id).get(play.scenario_id)
        return {"play": play, "tools": [(t["function"], form_fields(t["function"].get("parameters"))) for t in tools],
                "checklist": [c.check_item for c in scenario.checklist_with_func] if scenario else [],
                "ttl": config.play_ttl, "state_rows": state_rows(play.state) if play.state is not None else []}

    async def play_start(request: Request) -> Response:
        form = await request.form()
        env_id, scenario_id = str(form.get("env_id", "")), str(form.get("scenario_id", ""))
        try:
            config.corpus.scenario(env_id, scenario_id)
        except SpecError as exc:
            return page(request, "error.html", 400, title="Cannot play", message=str(exc))
        try:
            play = await plays().start(env_id, scenario_id)
        except EnvClientError as exc:
            return page(request, "error.html", 503, title="No lease", message=f"the pool gave no lease: {exc}")
        return RedirectResponse(f"/play/{play.play_id}", status_code=303)

    def get_play(request: Request) -> Play:
        return plays().get(request.path_params["play_id"])

    async def play_page(request: Request) -> Response:
        try:
            play = get_play(request)
        except PlayError as exc:
            return page(request, "error.html", 410, title="Episode over", message=str(exc))
        return page(request, "play.html", **play_context(play))

    def gone(exc: Exception) -> Response:
        return HTMLResponse(f'<div class="banner error">{escape(str(exc))}</div>', status_code=200,
                            headers={"HX-Retarget": "#banner", "HX-Reswap": "innerHTML"})

    async def play_call(request: Request) -> Response:
        try:
            play = get_play(request)
        except PlayError as exc:
            return gone(exc)
        tool_name = request.path_params["tool"]
        tools, _ = catalog.tools(play.env_id)
        function = next((t["function"] for t in tools if t["function"]["name"] == tool_name), None)
        if function is None:
            return gone(PlayError(f"{play.env_id} has no tool {tool_name!r}"))
        form = await request.form()
        values = {k: str(v) for k, v in form.items()}
        arguments, errors = arguments_from_form(function.get("parameters"), values)
        if errors:
            body = jinja.get_template("tool_form.html").render(
                play=play, function=function, fields=form_fields(function.get("parameters")), values=values,
                errors=errors, open=True)
            return HTMLResponse(body, headers={"HX-Retarget": f"#form-{tool_name}", "HX-Reswap": "outerHTML"})
        try:
            step = await plays().call(play, tool_name, arguments)
        except EnvClientError as exc:
            return gone(PlayError(f"the call did not reach the sandbox: {exc}"))
        # the step goes on top of the log; the form comes back clean (errors of an earlier try gone, values kept)
        form_html = jinja.get_template("tool_form.html").render(
            play=play, function=function, fields=form_fields(function.get("parameters")), values=values, errors={},
            open=True, oob=True)
        state_html = jinja.get_template("state_panel.html").render(
            play=play, state_rows=state_rows(play.state) if play.state is not None else [], oob=True,
            state_open=request.headers.get("x-state-open") == "1")
        return HTMLResponse(jinja.get_template("step.html").render(step=step) + form_html + state_html)

    async def play_evaluate(request: Request) -> Response:
        try:
            play = get_play(request)
            evaluation = await plays().evaluate(play)
        except (PlayError, EnvClientError) as exc:
            return gone(exc)
        return page(request, "evaluation.html", evaluation=evaluation)

    async def play_reset(request: Request) -> Response:
        try:
            play = get_play(request)
            await plays().reset(play)
        except (PlayError, EnvClientError) as exc:
            return gone(exc)
        return page(request, "play_body.html", **play_context(play))

    async def play_release(request: Request) -> Response:
        play_id = request.path_params["play_id"]
        env_id = plays().plays[play_id].env_id if play_id in plays().plays else ""
        await plays().release(play_id)
        target = f"/envs/{env_id}" if env_id else "/envs"
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    async def play_beat(request: Request) -> Response:
        # Always 200: a released lease is an answer the page expects (it stops beating), not a failed request.
        try:
            await plays().beat(request.path_params["play_id"])
        except PlayError as exc:
            return JSONResponse({"held": False, "message": str(exc)})
        return JSONResponse({"held": True})

    # ------------------------------------------------------------ pool

    def console_leases() -> list[dict[str, Any]]:
        return [{"env": p.env_id, "scenario": p.scenario_id, "lease": p.lease_id, "steps": len(p.steps)}
                for p in plays().plays.values()]

    async def pool_page(request: Request) -> Response:
        snap = await poolview.snapshot(state["pool"], url)
        snap["console_leases"] = console_leases()
        return page(request, "pool.html", snap_json=snap, pool=config.pool)

    async def pool_events(request: Request) -> Response:
        async def events() -> AsyncIterator[str]:
            while not await request.is_disconnected():
                snap = await poolview.snapshot(state["pool"], url)
                snap["console_leases"] = console_leases()
                yield f"data: {json.dumps(snap)}\n\n"
                await asyncio.sleep(config.refresh)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    # ------------------------------------------------------------ rollouts

    async def rollouts_page(request: Request) -> Response:
        if not config.trajectories:
            return page(request, "rollouts.html", report=None, records=[], filters=Filters(), problems=[],
                        envs=[], kinds=[])
        filters, problems = Filters.from_query(request.query_params)
        records = rollouts.records()
        report = rollouts.report()
        matching = [(i, r) for i, r in enumerate(records) if filters.keep(r)]
        shown = matching[:LIST_LIMIT]  # a page stays light with 100,000 episodes; filters narrow it down
        kinds = sorted({r.get("error_kind") or "" for r in records} - {""})
        return page(request, "rollouts.html", report=report, records=shown, matching=len(matching),
                    filters=filters, problems=problems,
                    envs=[row.env_id for row in report.rows], kinds=kinds, total=len(records),
                    charts={"rewards": list(report.reward_histogram.items()),  # pairs: tojson sorts keys
                            "steps": list(report.steps_histogram.items())})

    async def trajectory_page(request: Request) -> Response:
        index = request.path_params["index"]
        record = rollouts.record(index)
        if record is None:
            return not_found(request, f"no trajectory #{index} in {', '.join(map(str, config.trajectories))}")
        return page(request, "trajectory.html", index=index, record=record, checks=checks_of(record),
                    calls_of=message_calls, arguments_of=shown_arguments)

    async def home(request: Request) -> Response:
        return RedirectResponse("/envs", status_code=303)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = AsyncPool(config.pool)
        state["pool"], state["plays"] = pool, Plays(pool, config.play_ttl)
        reaper = asyncio.create_task(state["plays"].reaper())
        if config.look_up_images:
            catalog.start_image_lookup()
        try:
            yield
        finally:
            reaper.cancel()
            await state["plays"].close()
            await pool.close()

    routes = [
        Route("/", home),
        Route("/envs", envs_list),
        Route("/envs/{env_id:path}", env_page),
        Route("/play", play_start, methods=["POST"]),
        Route("/play/{play_id}", play_page),
        Route("/play/{play_id}/call/{tool}", play_call, methods=["POST"]),
        Route("/play/{play_id}/evaluate", play_evaluate, methods=["POST"]),
        Route("/play/{play_id}/reset", play_reset, methods=["POST"]),
        Route("/play/{play_id}/release", play_release, methods=["POST"]),
        Route("/play/{play_id}/beat", play_beat, methods=["POST"]),
        Route("/pool", pool_page),
        Route("/pool/events", pool_events),
        Route("/rollouts", rollouts_page),
        Route("/rollouts/{index:int}", trajectory_page),
        Route("/code.css", code_style),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Guard(Starlette(routes=routes, lifespan=lifespan), config.token)
