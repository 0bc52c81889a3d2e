"""Mount the UI on the FastAPI app: static files, the page routers and HTML error pages."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from fmhub.ui.routes import catalog, data, endpoints, evaluate, finetune, jobs, login, models
from fmhub.ui.templating import STATIC_DIR, STATIC_URL

PAGE_ROUTERS = (catalog, models, finetune, evaluate, jobs, endpoints, data, login)


def install_ui(app: FastAPI) -> None:
    """Serve the UI at ``/`` (the catalog) and ``/ui/...``, its static files at ``/static/ui``.

    Call before the API's own ``/static`` mount so that ``/static/ui`` is matched first.
    """
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="ui-static")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        """The catalog is the home page."""
        return RedirectResponse("/ui/models", status_code=302)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> RedirectResponse:
        """Browsers ask for ``/favicon.ico`` on pages without an icon link (e.g. a JSON twin)."""
        return RedirectResponse(f"{STATIC_URL}/favicon.svg", status_code=301)

    for module in PAGE_ROUTERS:
        app.include_router(module.router, prefix="/ui", include_in_schema=False)
