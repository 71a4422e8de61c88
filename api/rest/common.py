"""What every REST route needs: the request's auth context, and cookie handling."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.http.cookies import clear_session_cookie, set_session_cookie
from api.http.credentials import request_context
from api.services.accounts import SignedIn
from api.services.container import Services
from api.services.context import RequestContext


def services_of(request: Request) -> Services:
    # By key: as an attribute, the lookup fails first (raising inside) before `State` looks
    # in its dict.
    services = request.app.state["services"]
    assert isinstance(services, Services)
    return services


def context_of(request: Request) -> RequestContext:
    return request_context(request, services_of(request))


def signed_in(request: Request, response: Response, result: SignedIn) -> Response:
    """Hand a new session to the client: cookie, and `Authorization` response header."""
    set_session_cookie(response, services_of(request).settings, result.token, result.max_age)
    response.headers["Authorization"] = f"Bearer {result.token}"
    return response


def signed_out(request: Request, response: Response) -> Response:
    clear_session_cookie(response, services_of(request).settings)
    return response
