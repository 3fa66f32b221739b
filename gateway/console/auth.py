"""The console's token gate: a bearer token, or a signed session cookie that expires.

Why a signed, dated cookie: the old cookie was a digest of the token, valid for
ever; whoever copied it once kept access until the token changed. Now a login
(the token form, POSTed, or a ``?token=`` link) sets ``livinglab_console`` =
``<expiry>.<hmac>``: HMAC-SHA256 over the expiry under a key derived from the
token, so the server keeps no session table, a changed token ends every session,
and after ``[console] session_s`` the browser must log in again. The cookie is
``HttpOnly``, ``SameSite=Strict`` and ``Secure`` when the console is served over
https. The form posts to ``/_login`` so the token never sits in a URL, a history
or a proxy log.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse
from typing import Any

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

__all__ = ["COOKIE", "LOGIN_PATH", "TokenGate", "session_value", "valid_session"]

COOKIE = "livinglab_console"
LOGIN_PATH = "/_login"
_MAX_FORM = 4096  # the login form is one field; anything bigger is not a login


def _key(token: str) -> bytes:
    return hmac.new(token.encode(), b"livinglab-console-session-v1", hashlib.sha256).digest()


def session_value(token: str, expires: int) -> str:
    """The cookie for a session ending at Unix time ``expires``."""
    sig = hmac.new(_key(token), str(expires).encode(), hashlib.sha256).hexdigest()
    return f"{expires}.{sig}"


def valid_session(token: str, value: str | None, now: float, life_s: int) -> bool:
    """True for a cookie this token signed that has not expired (and does not claim
    to last longer than one session: a forged far future is refused too)."""
    if not value or "." not in value:
        return False
    raw, _, _sig = value.partition(".")
    if not raw.isdigit() or len(raw) > 12:
        return False
    expires = int(raw)
    if not now < expires <= now + life_s + 5:
        return False
    return hmac.compare_digest(value.encode(), session_value(token, expires).encode())


def _same_site_path(raw: str) -> str:
    """A local path to go back to: never ``//host`` or ``/\\host`` (no open redirect)."""
    parts = urllib.parse.urlsplit("/" + (raw or "").lstrip("/\\"))
    path = "/" + parts.path.lstrip("/\\")
    return path + ("?" + parts.query if parts.query else "")


class TokenGate:
    """ASGI middleware: with a token configured, every request must carry it (a bearer
    header) or a valid session cookie; ``POST /_login`` and ``?token=`` log in."""

    def __init__(self, app: Any, token: str, templates: Environment,
                 session_s: int = 12 * 3600) -> None:
        self.app = app
        self.token = token
        self.templates = templates
        self.session_s = session_s

    def _ok(self, candidate: str | None) -> bool:
        return bool(candidate) and hmac.compare_digest(str(candidate).encode(),
                                                       self.token.encode())

    def _login(self, request: Request, target: str) -> Response:
        resp = RedirectResponse(_same_site_path(target), status_code=303)
        expires = int(time.time()) + self.session_s
        resp.set_cookie(COOKIE, session_value(self.token, expires), max_age=self.session_s,
                        httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
        return resp

    async def _form(self, receive: Any) -> dict[str, str]:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > _MAX_FORM:
                return {}
            if not message.get("more_body"):
                break
        try:
            pairs = urllib.parse.parse_qsl(body.decode("utf-8"), max_num_fields=4)
        except (UnicodeDecodeError, ValueError):
            return {}
        return dict(pairs)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.token:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        auth = request.headers.get("authorization", "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        cookie = request.cookies.get(COOKIE)
        if request.url.path == LOGIN_PATH and request.method == "POST":
            form = await self._form(receive)
            if self._ok(form.get("token")):
                await self._login(request, form.get("next", "/"))(scope, receive, send)
                return
            await self._refuse(request, wrong=True)(scope, receive, send)
            return
        if self._ok(bearer) or valid_session(self.token, cookie, time.time(), self.session_s):
            await self.app(scope, receive, send)
            return
        query = request.query_params.get("token")
        if self._ok(query):
            # a login link: once in the URL, then a cookie; the token leaves the address bar
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + ("?" + urllib.parse.urlencode(rest) if rest else "")
            await self._login(request, target)(scope, receive, send)
            return
        await self._refuse(request, wrong=bool(bearer or query or cookie))(scope, receive, send)

    def _refuse(self, request: Request, wrong: bool) -> Response:
        if "text/html" in request.headers.get("accept", "") or request.method == "POST":
            nxt = request.url.path if request.url.path != LOGIN_PATH else "/"
            if request.url.query and request.url.path != LOGIN_PATH:
                nxt += "?" + urllib.parse.urlencode(
                    [(k, v) for k, v in request.query_params.multi_items() if k != "token"])
            body = self.templates.get_template("token.html").render(
                wrong=wrong, action=LOGIN_PATH, next=_same_site_path(nxt))
            resp: Response = HTMLResponse(body, status_code=401)
        else:
            resp = JSONResponse({"error": "a valid console token is required "
                                          "(Authorization: Bearer TOKEN)"}, status_code=401)
        resp.headers["WWW-Authenticate"] = 'Bearer realm="livinglab console"'
        return resp
