"""Sign-in for servers that require an API key: the key is kept in an HttpOnly cookie."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fmhub.ui.forms import first, read_form
from fmhub.ui.templating import render

router = APIRouter()
KEY_COOKIE = "fmhub_api_key"


def _safe_next(value: str) -> str:
    """Only paths on this server (no ``//host`` or scheme): an open redirect is refused."""
    return value if value.startswith("/") and not value.startswith("//") else "/ui/models"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/ui/models") -> HTMLResponse:
    """The sign-in form (only needed when the server requires API keys)."""
    return render(request, "login.html", {"next": _safe_next(next), "error": None}, title="Sign in")


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the key and keep it in a cookie; a wrong key shows the form again with the error."""
    form = await read_form(request)
    key, target = first(form, "api_key"), _safe_next(first(form, "next", "/ui/models"))
    checker = getattr(request.app.state, "key_checker", None)
    if checker is not None and not checker.check(key):
        return render(request, "login.html", {"next": target, "error": "this API key is not valid or was revoked"},
                      status_code=401, title="Sign in")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(KEY_COOKIE, key, httponly=True, samesite="strict")
    return response


@router.post("/logout")
def logout() -> Response:
    """Forget the key."""
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(KEY_COOKIE)
    return response
