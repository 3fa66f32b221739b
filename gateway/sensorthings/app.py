"""The web layer: Starlette routes under ``/v1.1``, CORS, JSON errors.

Starlette on uvicorn, like the console: a handful of GET routes and no
templates. Read-only and public: no token, CORS open to any origin for GET (a
browser client on another host is the point), every error a JSON body with the
standard's shape.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..stores.reading import StoreUnreadable
from .service import Service

__all__ = ["build_app"]

JSON = "application/json; charset=utf-8"


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body, separators=(",", ":"), allow_nan=False).encode(),
                    status_code=status, media_type=JSON)


def error(status: int, message: str) -> Response:
    return _json(status, {"code": status, "type": "error", "message": message})


def build_app(service: Service) -> Starlette:
    def root_of(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}"

    async def root(request: Request) -> Response:
        return _json(200, service.root(service.base(root_of(request))))

    async def resource(request: Request) -> Response:
        params = dict(request.query_params.multi_items())
        base = service.base(root_of(request))
        try:
            status, body = await asyncio.to_thread(service.get, request.path_params["path"],
                                                   params, base)
        except StoreUnreadable as exc:
            return error(503, f"the store cannot be read: {exc}")
        if isinstance(body, str):
            return PlainTextResponse(body, status_code=status)
        return _json(status, body)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        msg = {404: "no such resource (the API is at /v1.1)",
               405: "read-only: only GET is served"}.get(exc.status_code, str(exc.detail))
        return error(exc.status_code, msg)

    routes = [Route("/v1.1", root), Route("/v1.1/", root),
              Route("/v1.1/{path:path}", resource)]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error},
                     middleware=[Middleware(CORSMiddleware, allow_origins=["*"],
                                            allow_methods=["GET", "HEAD", "OPTIONS"],
                                            allow_headers=["*"])])
