"""The auth context: credentials read once per request, resolved once, shared by every
resolver and route of that request.

The HTTP layer only collects raw `Credentials`; everything that decides (which project, is
the origin allowed, is the token's session alive) happens here, the same for every route.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from api.core.clock import now_ms
from api.core.errors import AmendError, Reason
from api.core.frozen import quick_init
from api.core.models import Actor, Caller, Endpoint, Project
from api.core.policy import validate_endpoint_name
from api.security import keys
from api.security.tokens import Claims
from api.services.container import Services
from api.store import projects, sessions


@quick_init
@dataclass(frozen=True, slots=True)
class Credentials:
    """Everything a request presents, as read by the HTTP layer (nothing verified yet)."""

    token: str | None = None
    api_key: str | None = None
    master_key: str | None = None
    origin: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    # A WebSocket opened by a page on another origin: what it carries reaches that page's
    # script with no CORS check between.
    cross_origin_socket: bool = False


class RequestContext:
    """Per-request, lazily resolved, cached. Raises `AmendError` with the exact reason."""

    __slots__ = (
        "_caller",
        "_claims",
        "_key_project",
        "_keys_resolved",
        "_master",
        "_origin_project",
        "_project",
        "credentials",
        "services",
    )

    def __init__(self, services: Services, credentials: Credentials) -> None:
        self.services = services
        self.credentials = credentials
        self._key_project: Project | None = None
        self._keys_resolved = False
        self._master = False
        self._claims: Claims | None = None
        self._caller: Caller | None = None
        self._project: Project | None = None
        self._origin_project: Project | None = None

    @property
    def ip(self) -> str | None:
        return self.credentials.ip

    @property
    def is_master(self) -> bool:
        """True once `project()` has verified a master key."""
        return self._master

    @property
    def actor(self) -> Actor:
        return Actor.MASTER if self._master else Actor.USER

    async def _resolve_keys(self) -> Project | None:
        if self._keys_resolved:
            return self._key_project
        creds = self.credentials
        by_key = by_master = None
        if creds.api_key is None and creds.master_key is None:
            self._keys_resolved = True
            return None
        async with self.services.db.read() as tx:
            if creds.api_key is not None:
                by_key = await projects.by_api_key_digest(tx, keys.digest(creds.api_key))
                if by_key is None:
                    raise AmendError(Reason.INVALID_API_KEY, "the API key is not valid")
            if creds.master_key is not None:
                by_master = await projects.by_master_key_digest(tx, keys.digest(creds.master_key))
                if by_master is None:
                    raise AmendError(Reason.INVALID_API_KEY, "the master key is not valid")
        if by_key is not None and by_master is not None and by_key.id != by_master.id:
            raise AmendError(Reason.INVALID_API_KEY, "the keys belong to different projects")
        self._master = by_master is not None
        self._key_project = by_key or by_master
        self._keys_resolved = True
        return self._key_project

    def _check_origin(self, project: Project) -> None:
        self._origin_project = project
        origin = self.credentials.origin
        if origin is None:
            # Server-to-server callers holding the master key send no Origin.
            if not project.allow_no_origin and not self._master:
                raise AmendError(Reason.ORIGIN_REQUIRED, "requests without an Origin are refused")
        elif not project.origin_allowed(origin) or (
            self.credentials.cross_origin_socket and not project.lists_origin(origin)
        ):
            raise AmendError(Reason.ORIGIN_NOT_ALLOWED, "this origin is not allowed")

    def origin_project(self) -> Project | None:
        """The project whose origin policy this request met, once one has been resolved:
        only its own list may expose the answer to a browser origin (CORS headers)."""
        return self._origin_project

    async def api_key_project(self) -> Project:
        """The project named by the API key (sign-up, sign-in, the record API)."""
        if self.credentials.api_key is None:
            raise AmendError(Reason.MISSING_API_KEY, "the API key is missing")
        project = await self._resolve_keys()
        assert project is not None
        self._check_origin(project)
        self._project = project
        return project

    async def project(self) -> Project:
        """The project from the API key, the master key, or the token's audience."""
        if self._project is not None:
            return self._project
        project = await self._resolve_keys()
        if project is None:
            project = (await self.caller()).project
        self._check_origin(project)
        self._project = project
        return project

    async def endpoint(self, name: str, *, field: tuple[str, ...] = ("endpoint",)) -> Endpoint:
        project = await self.project()
        try:
            validate_endpoint_name(name)
        except AmendError:
            raise AmendError(Reason.INVALID_ENDPOINT, "no such endpoint", field=field) from None
        async with self.services.db.read() as tx:
            found = await projects.endpoint(tx, project.id, name)
        if found is None:
            raise AmendError(Reason.INVALID_ENDPOINT, "no such endpoint", field=field)
        return found

    async def caller(self) -> AuthenticatedCaller:
        """The signed-in user. The token is checked, then its session, on every request."""
        if self._caller is not None:
            assert isinstance(self._caller, AuthenticatedCaller)
            return self._caller
        token = self.credentials.token
        if token is None:
            raise AmendError(Reason.MISSING_TOKEN, "an access token is required")
        claims = self.services.tokens.decode(token)
        creds = self.credentials
        # (Most callers send no key: nothing to resolve, and no coroutine to run for it.)
        key_project = (
            await self._resolve_keys()
            if creds.api_key is not None or creds.master_key is not None
            else None
        )
        if key_project is not None and key_project.id != claims.project_id:
            raise AmendError(Reason.INVALID_TOKEN, "the access token belongs to another project")
        now = now_ms()
        async with self.services.db.read() as tx:
            found = await sessions.with_user(tx, claims.session_id)
            project = key_project
            if found is None or (project is None and creds.origin is not None):
                # The allow-list is read only for a request that has an Origin to check.
                project = project or await projects.by_id(tx, claims.project_id)
        if found is None:
            if project is None:
                raise AmendError(Reason.INVALID_TOKEN, "the access token is not valid")
            raise AmendError(Reason.SESSION_REVOKED, "the session has ended")
        if project is None:
            project = found.project  # (its origin list is not read: this request has no Origin)
        session, user = found.session, found.user
        if found.project.id != claims.project_id or user.unique_id != claims.unique_id:
            raise AmendError(Reason.USER_NOT_FOUND, "no user found for this token")
        if session.revoked_at is not None:
            raise AmendError(Reason.SESSION_REVOKED, "the session has been revoked")
        if session.expires_at <= now:
            raise AmendError(Reason.TOKEN_EXPIRED, "the session has expired")
        self.services.activity.seen(session.id, session.last_seen_at, now)
        self._check_origin(project)
        self._project = project
        self._claims = claims
        caller = AuthenticatedCaller(user=user, session=session, project=project)
        self._caller = caller
        return caller

    def with_token(self, token: str) -> RequestContext:
        """The same request presenting another token (WebSocket `connection_init`)."""
        return RequestContext(self.services, replace(self.credentials, token=token))

    def fresh(self) -> RequestContext:
        """A new resolution of the same credentials (a long-lived stream re-checks them)."""
        return RequestContext(self.services, self.credentials)

    def forget_caller(self) -> None:
        """After this request changed the caller, later resolvers must read it afresh."""
        self._caller = None


@quick_init
@dataclass(frozen=True, slots=True)
class AuthenticatedCaller(Caller):
    project: Project
