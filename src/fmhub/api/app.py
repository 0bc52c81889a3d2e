"""The FastAPI app: the REST API under ``/api/v1`` (one router per resource), ``/health`` and
``/ready``, and the job scheduler started and stopped with the app."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Any

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from fmhub import __version__
from fmhub.api.auth import ApiKeyMiddleware
from fmhub.api.errors import error_response, install_error_handlers
from fmhub.api.limits import BodyLimitMiddleware, RequestLimits
from fmhub.api.routers import chat, data, endpoints, evaluations, jobs, models, scoring
from fmhub.api.security import CsrfTokens, HostCheckMiddleware, SameOriginMiddleware, SecurityOptions
from fmhub.services.context import Context
from fmhub.services.health import database_problem, prepare_database

log = logging.getLogger("fmhub.api")
API_PREFIX = "/api/v1"
STATIC_DIR = Path(__file__).parent / "static"


def create_app(ctx: Context | None = None, *, require_api_key: bool = False, scheduler: Any = None,
               serve_endpoints: bool = True, security: SecurityOptions | None = None,
               limits: RequestLimits | None = None, advertise_url: str | None = None) -> FastAPI:
    """Build the app.

    Args:
        ctx: Service context (default: from the environment). Without ``ctx.data_roots`` the app
            works on a copy with the server's default roots (``FMHUB_DATA_ROOTS``, else the working
            folder; plus the upload area and the artifact store).
        require_api_key: Refuse calls without an active key (``/health`` excepted); ``fmhub serve``
            turns this on whenever it listens on anything but loopback.
        scheduler: A :class:`fmhub.services.scheduler.Scheduler` to run while the app runs, or None.
        serve_endpoints: Run the online endpoints' deployments in this server (restarting those
            recorded in the database at start-up).
        security: The server's names for the ``Host`` and origin checks (default: the loopback names
            only; ``fmhub serve`` passes its ``--host`` and ``--allowed-host`` values). In-process
            clients must use one of them, e.g. ``TestClient(app, base_url="http://localhost")``.
        limits: Body size and JSON nesting limits (default: :class:`RequestLimits`'s).
        advertise_url: This server's URL for the others sharing its database: they forward scoring
            requests for the deployments it runs there (None: they cannot).
    """
    ctx = ctx or Context.from_settings()
    if ctx.data_roots is None:  # a server reads user files only under its data roots
        from dataclasses import replace

        from fmhub.services.data_roots import DataRoots

        ctx = replace(ctx, data_roots=DataRoots.for_server(ctx.settings))
    from fmhub.services.serving import EndpointRuntime

    runtime = EndpointRuntime(ctx, owner_url=advertise_url) if serve_endpoints else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        prepare_database(ctx)  # migrate before the first request
        if scheduler is not None:
            scheduler.recover()  # jobs left running by a crashed server
            scheduler.start()
        owners = None
        if runtime is not None:
            from fmhub.services import deployment_owners

            await runtime.start_all()
            owners = asyncio.get_running_loop().create_task(deployment_owners.run_forever(ctx, runtime))
        try:
            yield
        finally:
            if owners is not None:
                owners.cancel()
            if runtime is not None:
                await runtime.shutdown()
            if scheduler is not None:
                scheduler.stop()

    app = FastAPI(title="fmhub", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="A self-hosted model catalog: browse models, fine-tune, evaluate, register. "
                              "Errors answer `{\"error\": {\"code\", \"message\", \"hint\"}}`.")
    app.state.ctx = ctx
    app.state.scheduler = scheduler
    app.state.runtime = runtime
    install_error_handlers(app)
    if require_api_key:
        from fmhub.services.keys import KeyChecker

        app.state.key_checker = KeyChecker(ctx)
        app.add_middleware(ApiKeyMiddleware, checker=app.state.key_checker)
    # Outermost last: the Host check, then the body limits, then the same-origin/CSRF check.
    security = security or SecurityOptions()
    app.state.limits = limits or RequestLimits()
    app.state.csrf = CsrfTokens(security.csrf_secret)
    app.add_middleware(SameOriginMiddleware, tokens=app.state.csrf)
    app.add_middleware(BodyLimitMiddleware, limits=app.state.limits)
    app.add_middleware(HostCheckMiddleware, options=security)

    @app.get("/health", tags=["health"], summary="Liveness")
    def health() -> dict[str, str]:
        """Answers while the process serves requests."""
        return {"status": "ok", "version": __version__}

    @app.get("/ready", tags=["health"], summary="Readiness")
    def ready() -> Any:
        """503 until the database answers and the scheduler (when this server runs one) is alive.

        The probe needs no key, so the database's error (which can name hosts and users) goes to the
        server's log, not into the answer."""
        problem = database_problem(ctx)
        if problem is not None:
            logging.getLogger("fmhub.api").warning("readiness: database not reachable: %s", problem)
            return error_response(503, "not_ready", "database not reachable",
                                  "see the server's log for the database's error")
        alive = scheduler is None or scheduler.is_alive()
        if not alive:
            return error_response(503, "not_ready", "the job scheduler is not running")
        return {"status": "ready", "scheduler": scheduler.worker if scheduler is not None else None}

    from fmhub.ui.app import install_ui

    install_ui(app)  # the web UI at / and /ui/..., its files at /static/ui (before /static)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """Swagger UI for the OpenAPI document, served from this server (works offline)."""
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="fmhub API",
                                   swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url="/static/swagger-ui/favicon-32x32.png")

    api = APIRouter(prefix=API_PREFIX)
    for module in (models, data, jobs, evaluations, endpoints):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(scoring.router)
    app.include_router(chat.router)
    return app
