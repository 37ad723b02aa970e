"""Builds the FastAPI application around a runtime (the composition root passes it in)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from liutong import __version__
from liutong.bootstrap import Runtime
from liutong.errors import InvalidRequest, LiutongError

log = logging.getLogger("liutong.http")


def _lang(request: Request) -> str:
    accept = request.headers.get("accept-language", "zh").lower()
    return "en" if accept.startswith("en") else "zh"


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="六通 Liutong API",
        version=__version__,
        description="多业态大会员中台 — members, points, tiers, benefits, stored value and settlement "
        "across every business of a tourism group. 错误均带稳定代码与中英文信息。",
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime

    @app.exception_handler(LiutongError)
    def _domain_error(request: Request, exc: LiutongError) -> JSONResponse:
        if exc.status >= 500:
            log.error("error %s: %s", exc.code, exc.message("en"))
        return JSONResponse(status_code=exc.status, content={"error": exc.to_dict(_lang(request))})

    @app.exception_handler(RequestValidationError)
    def _malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {"loc": [str(p) for p in err.get("loc", ())], "type": err.get("type"), "msg": err.get("msg")}
            for err in exc.errors()
        ]
        detail = "; ".join(".".join(f["loc"][1:] or f["loc"]) for f in fields)
        error = InvalidRequest(detail=detail, fields=fields)
        return JSONResponse(status_code=422, content={"error": error.to_dict(_lang(request))})

    # Swagger UI 5 (OpenAPI 3.1) as shipped inside the fastapi-offline wheel: served from here,
    # never from a CDN, because deployments often sit on intranets.
    swagger_dir = Path(importlib.util.find_spec("fastapi_offline").origin).parent / "static"
    app.mount("/static/swagger", StaticFiles(directory=swagger_dir), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="六通 Liutong API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon.png",
        )

    from liutong.checkout.endpoints import router as checkout_router
    from liutong.ledger.endpoints import router as ledger_router
    from liutong.members.endpoints import router as members_router
    from liutong.organisation.endpoints import router as organisation_router
    from liutong.program.endpoints import router as program_router
    from liutong.storedvalue.endpoints import router as stored_value_router
    from liutong.visits.endpoints import router as visits_router
    from liutong.web.health import router as health_router

    app.include_router(health_router)
    app.include_router(organisation_router, prefix="/v1")
    app.include_router(members_router, prefix="/v1")
    app.include_router(ledger_router, prefix="/v1")
    app.include_router(program_router, prefix="/v1")
    app.include_router(checkout_router, prefix="/v1")
    app.include_router(visits_router, prefix="/v1")
    app.include_router(stored_value_router, prefix="/v1")
    return app
