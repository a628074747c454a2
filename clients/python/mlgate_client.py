#!/usr/bin/python3
"""A small Python client and command line for mlgate.

mlgate is two gRPC services: ``authsvc`` (register, log in, keep sessions,
publish the token signing keys, and an admin API) and ``predictsvc`` (run
models; every call needs an access token from authsvc).  This module wraps the
generated stubs in ``<repo>/gen/python`` behind :class:`MlgateClient`::

    from mlgate_client import MlgateClient, MlgateError

    with MlgateClient("localhost:50051", "localhost:50052") as client:
        client.login("ada@example.com", "correct horse battery")
        result = client.predict("iris", [[5.1, 3.5, 1.4, 0.2]])
        print(result.predictions[0].label)          # setosa
        client.refresh()                            # new access + refresh token
        client.logout()                             # ends the session

Every failed RPC raises :class:`MlgateError`, whose ``code`` is the
``grpc.StatusCode`` the service answered with.  Run the module as a script for
the command line (``--help`` lists the commands).

Only the standard library, ``grpcio`` and ``protobuf`` are needed.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, TypeVar

try:
    import grpc
except ModuleNotFoundError as missing:  # another interpreter than Debian's
    raise SystemExit(
        f"mlgate_client: {missing}; it needs Debian's python3-grpcio and "
        "python3-protobuf: run it with /usr/bin/python3 "
        "(apt-get install python3-grpcio python3-protobuf)"
    ) from None

# The generated stubs import each other as top-level packages ("auth.v1",
# "prediction.v1"), so <repo>/gen/python must be on sys.path.  This file lives
# in <repo>/clients/python/.
_GEN_PYTHON = Path(__file__).resolve().parents[2] / "gen" / "python"
if str(_GEN_PYTHON) not in sys.path:
    sys.path.insert(0, str(_GEN_PYTHON))

from auth.v1 import auth_pb2, auth_pb2_grpc  # noqa: E402
from prediction.v1 import prediction_pb2, prediction_pb2_grpc  # noqa: E402

__all__ = [
    "AuditEvent",
    "DEFAULT_AUTH_ADDR",
    "DEFAULT_PREDICT_ADDR",
    "IRIS_SAMPLES",
    "MlgateClient",
    "MlgateError",
    "ModelInfo",
    "NotLoggedInError",
    "Prediction",
    "PredictResult",
    "UserInfo",
    "main",
]

DEFAULT_AUTH_ADDR = "localhost:50051"
DEFAULT_PREDICT_ADDR = "localhost:50052"

#: One sample of each Iris species (setosa, versicolor, virginica), used by ``demo``.
IRIS_SAMPLES: tuple[tuple[float, ...], ...] = (
    (5.1, 3.5, 1.4, 0.2),
    (6.4, 3.2, 4.5, 1.5),
    (6.3, 3.3, 6.0, 2.5),
)

_T = TypeVar("_T")


class MlgateError(Exception):
    """A failed mlgate call.

    Attributes:
        code: the gRPC status code, e.g. ``grpc.StatusCode.UNAUTHENTICATED``.
        message: the human-readable status message from the service.
    """

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def from_rpc_error(cls, err: grpc.RpcError) -> "MlgateError":
        """Build an MlgateError from the exception a gRPC stub raised."""
        code = err.code() if hasattr(err, "code") else None
        details = err.details() if hasattr(err, "details") else None
        if not isinstance(code, grpc.StatusCode):
            code = grpc.StatusCode.UNKNOWN
        return cls(code, details or str(err))


class NotLoggedInError(MlgateError):
    """A call that needs a token was made before :meth:`MlgateClient.login`
    (or after :meth:`~MlgateClient.logout` / :meth:`~MlgateClient.logout_all`).

    Raised by the client itself, without contacting the service.  It is an
    :class:`MlgateError` with code ``UNAUTHENTICATED``, so one ``except``
    clause handles both.
    """

    def __init__(self, method: str) -> None:
        super().__init__(
            grpc.StatusCode.UNAUTHENTICATED,
            f"not logged in: call login() before {method}()",
        )


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one instance.

    Attributes:
        label: the most probable label.
        probabilities: every label's probability, in the model's label order.
    """

    label: str
    probabilities: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PredictResult:
    """The answer to :meth:`MlgateClient.predict`: one prediction per instance, in order."""

    model: str
    model_version: str
    predictions: list[Prediction] = field(default_factory=list)


@dataclass(frozen=True)
class ModelInfo:
    """A model's contract: what it takes and what it can answer."""

    name: str
    version: str
    description: str
    feature_names: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class UserInfo:
    """An account as admins see it (:meth:`MlgateClient.list_users`).

    Attributes:
        user_id: the account's id (the ``sub`` of its tokens).
        email: its canonical (trimmed, lower-cased) email.
        roles: its roles, e.g. ``["user"]`` or ``["admin", "user"]``.
        create_time: when it registered (UTC).
        disable_time: when it was disabled (UTC); ``None`` while it is enabled.
    """

    user_id: str
    email: str
    roles: list[str] = field(default_factory=list)
    create_time: Optional[datetime] = None
    disable_time: Optional[datetime] = None

    @property
    def disabled(self) -> bool:
        return self.disable_time is not None


@dataclass(frozen=True)
class AuditEvent:
    """One recorded auth event (:meth:`MlgateClient.list_audit_events`).

    ``kind`` is one of register, login, refresh, refresh_reuse, logout,
    logout_all, password_change, user_disabled, roles_changed, key_rotated;
    ``outcome`` is success, failure, denied, ...  An event never holds a
    password or a token.
    """

    time: Optional[datetime]
    kind: str
    user_id: str
    email: str
    client_address: str
    outcome: str
    detail: str


class MlgateClient:
    """A client for mlgate's authsvc and predictsvc.

    Use it as a context manager (or call :meth:`close`) so that its two
    channels are closed.  Call :meth:`login` before any call that needs a
    token (predictsvc's, :meth:`logout_all`, :meth:`change_password` and the
    admin calls).  The client keeps the session's access token, sent as
    ``authorization: Bearer <token>`` metadata, and its refresh token, used by
    :meth:`refresh` and :meth:`logout`.

    Args:
        auth_target: ``host:port`` of authsvc's gRPC listener.
        predict_target: ``host:port`` of predictsvc's gRPC listener.
        timeout: the deadline, in seconds, of every RPC.
        auto_refresh: when a call that sends the access token is refused with
            ``UNAUTHENTICATED`` after the token's expiry time (as authsvc
            reported it, by this machine's clock) and a refresh token is kept,
            call :meth:`refresh` once and retry the call with the new token.
            A refused call is not retried for any other reason.

    The channels are plaintext (``grpc.insecure_channel``), matching the
    services' defaults.
    """

    def __init__(
        self,
        auth_target: str = DEFAULT_AUTH_ADDR,
        predict_target: str = DEFAULT_PREDICT_ADDR,
        timeout: float = 10.0,
        auto_refresh: bool = True,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = float(timeout)
        self.auto_refresh = bool(auto_refresh)
        self._access_token: Optional[str] = None
        self._refresh_token: Optional[str] = None
        self._access_expire_time: Optional[datetime] = None
        self._refresh_expire_time: Optional[datetime] = None
        self._auth_channel = grpc.insecure_channel(auth_target)
        self._predict_channel = grpc.insecure_channel(predict_target)
        self._auth = auth_pb2_grpc.AuthServiceStub(self._auth_channel)
        self._admin = auth_pb2_grpc.AdminServiceStub(self._auth_channel)
        self._predict = prediction_pb2_grpc.PredictionServiceStub(self._predict_channel)

    # -- lifecycle ---------------------------------------------------------

    def close(self) -> None:
        """Close both channels.  Safe to call more than once."""
        self._auth_channel.close()
        self._predict_channel.close()

    def __enter__(self) -> "MlgateClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never shows a token
        state = "logged in" if self._access_token else "not logged in"
        return f"<MlgateClient {state}>"

    # -- session state -----------------------------------------------------

    @property
    def logged_in(self) -> bool:
        """Whether the client holds an access token (from :meth:`login` or
        :meth:`refresh`, and not yet forgotten by a logout)."""
        return self._access_token is not None

    @property
    def access_token(self) -> Optional[str]:
        """The access token sent with protected calls, or ``None``."""
        return self._access_token

    @property
    def refresh_token(self) -> Optional[str]:
        """The session's current refresh token, or ``None``.  Keep it secret."""
        return self._refresh_token

    @property
    def access_expire_time(self) -> Optional[datetime]:
        """When authsvc said the access token stops being accepted (UTC)."""
        return self._access_expire_time

    @property
    def refresh_expire_time(self) -> Optional[datetime]:
        """When authsvc said the refresh token stops working if unused (UTC)."""
        return self._refresh_expire_time

    def _keep(self, resp: Any) -> None:
        """Keep the token pair of a LoginResponse or RefreshResponse."""
        self._access_token = resp.access_token
        self._refresh_token = resp.refresh_token or None
        self._access_expire_time = _time(resp, "expire_time")
        self._refresh_expire_time = _time(resp, "refresh_expire_time")

    def _forget(self) -> None:
        self._access_token = None
        self._refresh_token = None
        self._access_expire_time = None
        self._refresh_expire_time = None

    # -- authsvc -----------------------------------------------------------

    def register(self, email: str, password: str) -> str:
        """Create an account and return its user id.

        Raises MlgateError: ``ALREADY_EXISTS`` when the email is taken,
        ``INVALID_ARGUMENT`` for a malformed email or a password that is not
        8 to 72 bytes.
        """
        req = auth_pb2.RegisterRequest(email=email, password=password)
        return self._call(self._auth.Register, req).user_id

    def login(self, email: str, password: str) -> str:
        """Log in (a new session), keep the access and refresh tokens on this
        client, and return the access token.

        Raises MlgateError: ``UNAUTHENTICATED`` for a wrong email or password.
        """
        req = auth_pb2.LoginRequest(email=email, password=password)
        resp = self._call(self._auth.Login, req)
        self._keep(resp)
        return resp.access_token

    def refresh(self) -> str:
        """Exchange the kept refresh token for a new access token and a new
        refresh token, keep both, and return the new access token.

        The old refresh token is spent: presenting it again makes authsvc end
        the whole session.  The old access token keeps working until it
        expires or the session ends.

        Raises:
            NotLoggedInError: no refresh token is kept.
            MlgateError: ``UNAUTHENTICATED`` when the refresh token is spent,
                expired or its session has ended; the client then drops the
                refresh token (it can never work again) but keeps the access
                token.
        """
        if self._refresh_token is None:
            raise NotLoggedInError("refresh")
        req = auth_pb2.RefreshRequest(refresh_token=self._refresh_token)
        try:
            resp = self._call(self._auth.Refresh, req)
        except MlgateError as e:
            if e.code is grpc.StatusCode.UNAUTHENTICATED:
                self._refresh_token = None
                self._refresh_expire_time = None
            raise
        self._keep(resp)
        return resp.access_token

    def logout(self) -> None:
        """End the session of the kept refresh token and forget both tokens.

        predictsvc refuses the session's access tokens within seconds (it
        follows authsvc's revocation feed).  With no refresh token kept, only
        forgets the access token.  If the call fails, both tokens are kept so
        that it can be retried.
        """
        if self._refresh_token is not None:
            self._call(self._auth.Logout, auth_pb2.LogoutRequest(refresh_token=self._refresh_token))
        self._forget()

    def logout_all(self) -> int:
        """End every session of the logged-in account, this one included, and
        forget both tokens.  Returns how many sessions ended."""
        resp = self._call(self._auth.LogoutAll, auth_pb2.LogoutAllRequest(), auth="logout_all")
        self._forget()
        return resp.sessions_ended

    def change_password(self, old_password: str, new_password: str) -> int:
        """Set a new password and end the account's other sessions; this
        client's session goes on.  Returns how many other sessions ended.

        Raises MlgateError: ``UNAUTHENTICATED`` when ``old_password`` is wrong,
        ``INVALID_ARGUMENT`` for a new password that is not 8 to 72 bytes.
        """
        req = auth_pb2.ChangePasswordRequest(old_password=old_password, new_password=new_password)
        return self._call(self._auth.ChangePassword, req, auth="change_password").other_sessions_ended

    def jwks(self) -> dict[str, Any]:
        """Return authsvc's public signing keys as a JWK Set.

        The shape is the one served at ``/.well-known/jwks.json``:
        ``{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": ..., "kid": ...,
        "use": "sig", "alg": "EdDSA"}, ...]}``.
        """
        resp = self._call(self._auth.GetJwks, auth_pb2.GetJwksRequest())
        return {
            "keys": [
                {f.name: value for f, value in key.ListFields()}
                for key in resp.keys
            ]
        }

    # -- admin (needs login with the admin role) ---------------------------
    #
    # Every admin call is PERMISSION_DENIED for an account without the admin
    # role.  A role granted to an account applies from its next login or refresh.

    def list_users(self, page_size: int = 100, page_token: str = "") -> tuple[list[UserInfo], str]:
        """One page of accounts, in id order, and the token of the next page
        (``""`` on the last page).  ``page_size`` is at most 1000."""
        req = auth_pb2.ListUsersRequest(page_size=page_size, page_token=page_token)
        resp = self._call(self._admin.ListUsers, req, auth="list_users")
        return [_user_info(u) for u in resp.users], resp.next_page_token

    def disable_user(self, user_id: str) -> int:
        """Disable an account and end all its sessions; it cannot log in
        again.  Returns how many sessions ended.  ``NOT_FOUND`` for an
        unknown id."""
        req = auth_pb2.DisableUserRequest(user_id=user_id)
        return self._call(self._admin.DisableUser, req, auth="disable_user").sessions_ended

    def enable_user(self, user_id: str) -> None:
        """Let a disabled account log in again (its ended sessions stay
        ended).  ``NOT_FOUND`` for an unknown id."""
        req = auth_pb2.EnableUserRequest(user_id=user_id)
        self._call(self._admin.EnableUser, req, auth="enable_user")

    def set_user_roles(self, user_id: str, roles: Sequence[str]) -> UserInfo:
        """Replace an account's roles; returns the account after the change.
        The roles decide the scopes of the account's next tokens."""
        req = auth_pb2.SetUserRolesRequest(user_id=user_id, roles=list(roles))
        return _user_info(self._call(self._admin.SetUserRoles, req, auth="set_user_roles").user)

    def list_audit_events(
        self, page_size: int = 100, page_token: str = "", user_id: str = ""
    ) -> tuple[list[AuditEvent], str]:
        """One page of audit events, newest first, and the token of the next
        (older) page (``""`` on the last).  With ``user_id``, only that
        account's events."""
        req = auth_pb2.ListAuditEventsRequest(page_size=page_size, page_token=page_token,
                                              user_id=user_id)
        resp = self._call(self._admin.ListAuditEvents, req, auth="list_audit_events")
        events = [
            AuditEvent(
                time=_time(e, "time"), kind=e.kind, user_id=e.user_id, email=e.email,
                client_address=e.client_address, outcome=e.outcome, detail=e.detail,
            )
            for e in resp.events
        ]
        return events, resp.next_page_token

    # -- predictsvc (needs login) -----------------------------------------

    def predict(self, model: str, instances: Sequence[Sequence[float]]) -> PredictResult:
        """Run ``model`` on a batch of feature vectors.

        Args:
            model: the model name, e.g. ``"iris"``.
            instances: one feature vector per prediction wanted, each in the
                order of the model's ``feature_names``.

        Raises:
            NotLoggedInError: before :meth:`login`.
            MlgateError: ``NOT_FOUND`` for an unknown model,
                ``INVALID_ARGUMENT`` for a wrong feature count, a non-finite
                value or an empty batch.
        """
        return _predict_result(
            self._call(self._predict.Predict, _predict_request(model, instances), auth="predict"))

    def _predict_with_token(self, access_token: str, model: str,
                            instances: Sequence[Sequence[float]]) -> PredictResult:
        """predict() with a given access token instead of the kept one, and no
        automatic refresh (the command line's session-demo uses it)."""
        return _predict_result(self._invoke(self._predict.Predict,
                                            _predict_request(model, instances), access_token))

    def list_models(self) -> list[ModelInfo]:
        """List every model predictsvc serves, sorted by name."""
        resp = self._call(self._predict.ListModels, prediction_pb2.ListModelsRequest(),
                          auth="list_models")
        return [_model_info(m) for m in resp.models]

    def get_model(self, name: str) -> ModelInfo:
        """Describe one model.  Raises MlgateError ``NOT_FOUND`` for an unknown name."""
        resp = self._call(self._predict.GetModel, prediction_pb2.GetModelRequest(name=name),
                          auth="get_model")
        return _model_info(resp.model)

    # -- plumbing ----------------------------------------------------------

    def _call(self, rpc: Callable[..., _T], request: Any, auth: Optional[str] = None) -> _T:
        """Invoke a unary RPC with the deadline and, if ``auth`` names the
        calling method, the kept access token; translate gRPC errors.

        With ``auto_refresh``, a call refused as UNAUTHENTICATED after the
        access token's expiry time is retried once after :meth:`refresh`.
        """
        if auth is None:
            return self._invoke(rpc, request, None)
        if self._access_token is None:
            raise NotLoggedInError(auth)
        try:
            return self._invoke(rpc, request, self._access_token)
        except MlgateError as err:
            if not self._may_refresh(err):
                raise
            try:
                self.refresh()
            except MlgateError:
                raise err  # the caller's problem is the refused call; the refresh error is its __context__
            return self._invoke(rpc, request, self._access_token)

    def _may_refresh(self, err: MlgateError) -> bool:
        """Whether a refused call is worth one refresh and retry: it was
        UNAUTHENTICATED, a refresh token is kept, and the access token's
        expiry time has passed."""
        return (
            self.auto_refresh
            and err.code is grpc.StatusCode.UNAUTHENTICATED
            and self._refresh_token is not None
            and self._access_expire_time is not None
            and datetime.now(timezone.utc) >= self._access_expire_time
        )

    def _invoke(self, rpc: Callable[..., _T], request: Any, access_token: Optional[str]) -> _T:
        metadata = None if access_token is None else (("authorization", "Bearer " + access_token),)
        try:
            return rpc(request, timeout=self.timeout, metadata=metadata)
        except grpc.RpcError as err:
            raise MlgateError.from_rpc_error(err) from err


def _time(msg: Any, name: str) -> Optional[datetime]:
    """A Timestamp field as an aware UTC datetime, or None when unset."""
    if not msg.HasField(name):
        return None
    return getattr(msg, name).ToDatetime(tzinfo=timezone.utc)


def _user_info(u: auth_pb2.User) -> UserInfo:
    return UserInfo(
        user_id=u.user_id,
        email=u.email,
        roles=list(u.roles),
        create_time=_time(u, "create_time"),
        disable_time=_time(u, "disable_time"),
    )


def _predict_request(model: str, instances: Sequence[Sequence[float]]) -> prediction_pb2.PredictRequest:
    return prediction_pb2.PredictRequest(
        model=model,
        instances=[
            prediction_pb2.Instance(features=[float(x) for x in features])
            for features in instances
        ],
    )


def _predict_result(resp: prediction_pb2.PredictResponse) -> PredictResult:
    return PredictResult(
        model=resp.model,
        model_version=resp.model_version,
        predictions=[
            Prediction(
                label=p.label,
                probabilities={lp.label: float(lp.probability) for lp in p.probabilities},
            )
            for p in resp.predictions
        ],
    )


def _model_info(m: prediction_pb2.Model) -> ModelInfo:
    return ModelInfo(
        name=m.name,
        version=m.version,
        description=m.description,
        feature_names=list(m.feature_names),
        labels=list(m.labels),
    )


# -- command line -------------------------------------------------------------


def format_prediction(p: Prediction) -> str:
    """One line: the label, then every label's probability to three places."""
    probs = " ".join(f"{label}={prob:.3f}" for label, prob in p.probabilities.items())
    return f"{p.label}  {probs}"


def _features(text: str) -> list[float]:
    """argparse type for ``--features 5.1,3.5,1.4,0.2``."""
    parts = [s.strip() for s in text.split(",")]
    try:
        return [float(s) for s in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"want comma-separated numbers like 5.1,3.5,1.4,0.2, got {text!r}"
        ) from None


def _build_parser() -> argparse.ArgumentParser:
    # --auth/--predict/--timeout are accepted before or after the command.  Their
    # argparse default is SUPPRESS at both levels so that neither level overwrites
    # the other; the real defaults (env, then built-in) are applied in main().
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--auth", metavar="ADDR", default=argparse.SUPPRESS,
                        help=f"authsvc gRPC address (env MLGATE_AUTH_ADDR, default {DEFAULT_AUTH_ADDR})")
    common.add_argument("--predict", metavar="ADDR", default=argparse.SUPPRESS,
                        help=f"predictsvc gRPC address (env MLGATE_PREDICT_ADDR, default {DEFAULT_PREDICT_ADDR})")
    common.add_argument("--timeout", metavar="SECONDS", type=float, default=argparse.SUPPRESS,
                        help="deadline of each RPC (default 10)")

    creds = argparse.ArgumentParser(add_help=False)
    creds.add_argument("--email", required=True)
    creds.add_argument("--password",
                       help="the password; better: set env MLGATE_PASSWORD, "
                            "or leave both unset to be prompted")

    parser = argparse.ArgumentParser(
        prog="mlgate_client.py",
        description="Command line for mlgate: register, log in and run predictions.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("register", parents=[common, creds], help="create an account; prints its user id")
    sub.add_parser("login", parents=[common, creds], help="log in; prints the access token")
    p = sub.add_parser("predict", parents=[common, creds],
                       help="log in, then print one prediction per --features")
    p.add_argument("--model", required=True, help='model name, e.g. "iris"')
    p.add_argument("--features", type=_features, action="append", required=True,
                   metavar="X1,X2,...", help="one instance; repeat for a batch")
    sub.add_parser("models", parents=[common, creds], help="log in, then list the models")
    sub.add_parser("demo", parents=[common, creds],
                   help="register (if needed), log in and classify three Iris samples")
    sub.add_parser("session-demo", parents=[common, creds],
                   help="register (if needed), log in, predict, refresh, predict, log out, "
                        "and show the old access token being refused")
    return parser


def _password(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    if args.password is not None:
        return args.password
    env = os.environ.get("MLGATE_PASSWORD")
    if env:
        return env
    if sys.stdin.isatty():
        return getpass.getpass("password: ")
    parser.error("no password: pass --password or set MLGATE_PASSWORD")
    raise AssertionError("unreachable")


#: How long session-demo waits for predictsvc to refuse a logged-out token.
LOGOUT_REFUSAL_LIMIT = 10.0


def _register_if_needed(client: MlgateClient, email: str, password: str) -> None:
    try:
        user_id = client.register(email, password)
        print(f"registered {email} (user id {user_id})")
    except MlgateError as e:
        if e.code is not grpc.StatusCode.ALREADY_EXISTS:
            raise
        print(f"{email} is already registered")


def _session_demo(client: MlgateClient, email: str, password: str) -> int:
    sample = IRIS_SAMPLES[0]
    _register_if_needed(client, email, password)
    client.login(email, password)
    print(f"logged in as {email}")
    p = client.predict("iris", [sample]).predictions[0]
    print(f"predict: {format_prediction(p)}")
    client.refresh()
    print("refreshed: new access token and refresh token")
    p = client.predict("iris", [sample]).predictions[0]
    print(f"predict with the new access token: {format_prediction(p)}")
    old_access = client.access_token
    assert old_access is not None
    client.logout()
    start = time.monotonic()
    print("logged out")
    # predictsvc follows authsvc's revocation feed, so it refuses the ended
    # session's tokens after at most one poll interval (1 s by default).
    while True:
        try:
            client._predict_with_token(old_access, "iris", [sample])
        except MlgateError as e:
            if e.code is not grpc.StatusCode.UNAUTHENTICATED:
                raise
            print(f"after logout: UNAUTHENTICATED (refused after {time.monotonic() - start:.1f}s)")
            return 0
        if time.monotonic() - start > LOGOUT_REFUSAL_LIMIT:
            print(f"error: predictsvc still accepts the logged-out access token after "
                  f"{LOGOUT_REFUSAL_LIMIT:.0f}s", file=sys.stderr)
            return 1
        time.sleep(0.1)


def _run(client: MlgateClient, args: argparse.Namespace, password: str) -> int:
    out = sys.stdout
    if args.command == "register":
        print(client.register(args.email, password), file=out)
    elif args.command == "login":
        print(client.login(args.email, password), file=out)
    elif args.command == "predict":
        client.login(args.email, password)
        result = client.predict(args.model, args.features)
        for p in result.predictions:
            print(format_prediction(p), file=out)
    elif args.command == "models":
        client.login(args.email, password)
        for m in client.list_models():
            print(f"{m.name} (version {m.version}): {m.description}", file=out)
            print(f"  features: {', '.join(m.feature_names)}", file=out)
            print(f"  labels:   {', '.join(m.labels)}", file=out)
    elif args.command == "demo":
        _register_if_needed(client, args.email, password)
        client.login(args.email, password)
        print(f"logged in as {args.email}", file=out)
        result = client.predict("iris", IRIS_SAMPLES)
        print(f"model {result.model} version {result.model_version}:", file=out)
        for features, p in zip(IRIS_SAMPLES, result.predictions):
            print(f"{','.join(str(x) for x in features)}  {format_prediction(p)}", file=out)
    elif args.command == "session-demo":
        return _session_demo(client, args.email, password)
    else:  # pragma: no cover - argparse rejects unknown commands
        raise AssertionError(args.command)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    auth = getattr(args, "auth", None) or os.environ.get("MLGATE_AUTH_ADDR") or DEFAULT_AUTH_ADDR
    predict = (getattr(args, "predict", None) or os.environ.get("MLGATE_PREDICT_ADDR")
               or DEFAULT_PREDICT_ADDR)
    timeout = getattr(args, "timeout", 10.0)
    if not timeout > 0:
        parser.error(f"--timeout must be positive, got {timeout}")
    password = _password(args, parser)
    try:
        with MlgateClient(auth, predict, timeout=timeout) as client:
            return _run(client, args, password)
    except MlgateError as e:
        print(f"error: {e.code.name}: {e.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
