#!/usr/bin/python3
"""A small Python client and command line for mlgate.

mlgate is two gRPC services: ``authsvc`` (register, log in, publish the token
signing keys) and ``predictsvc`` (run models; every call needs an access token
from authsvc).  This module wraps the generated stubs in ``<repo>/gen/python``
behind :class:`MlgateClient`::

    from mlgate_client import MlgateClient, MlgateError

    with MlgateClient("localhost:50051", "localhost:50052") as client:
        client.login("ada@example.com", "correct horse battery")
        result = client.predict("iris", [[5.1, 3.5, 1.4, 0.2]])
        print(result.predictions[0].label)          # setosa

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, TypeVar

import grpc

# The generated stubs import each other as top-level packages ("auth.v1",
# "prediction.v1"), so <repo>/gen/python must be on sys.path.  This file lives
# in <repo>/clients/python/.
_GEN_PYTHON = Path(__file__).resolve().parents[2] / "gen" / "python"
if str(_GEN_PYTHON) not in sys.path:
    sys.path.insert(0, str(_GEN_PYTHON))

from auth.v1 import auth_pb2, auth_pb2_grpc  # noqa: E402
from prediction.v1 import prediction_pb2, prediction_pb2_grpc  # noqa: E402

__all__ = [
    "DEFAULT_AUTH_ADDR",
    "DEFAULT_PREDICT_ADDR",
    "IRIS_SAMPLES",
    "MlgateClient",
    "MlgateError",
    "ModelInfo",
    "NotLoggedInError",
    "Prediction",
    "PredictResult",
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
    """A prediction call was made before :meth:`MlgateClient.login`.

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


class MlgateClient:
    """A client for mlgate's authsvc and predictsvc.

    Use it as a context manager (or call :meth:`close`) so that its two
    channels are closed.  Call :meth:`login` before :meth:`predict`,
    :meth:`list_models` or :meth:`get_model`; the token is kept on the client
    and sent as ``authorization: Bearer <token>`` metadata.

    Args:
        auth_target: ``host:port`` of authsvc's gRPC listener.
        predict_target: ``host:port`` of predictsvc's gRPC listener.
        timeout: the deadline, in seconds, of every RPC.

    The channels are plaintext (``grpc.insecure_channel``), matching the
    services' defaults.
    """

    def __init__(
        self,
        auth_target: str = DEFAULT_AUTH_ADDR,
        predict_target: str = DEFAULT_PREDICT_ADDR,
        timeout: float = 10.0,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = float(timeout)
        self._token: Optional[str] = None
        self._auth_channel = grpc.insecure_channel(auth_target)
        self._predict_channel = grpc.insecure_channel(predict_target)
        self._auth = auth_pb2_grpc.AuthServiceStub(self._auth_channel)
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

    def __repr__(self) -> str:  # never shows the token
        state = "logged in" if self._token else "not logged in"
        return f"<MlgateClient {state}>"

    # -- authsvc -----------------------------------------------------------

    @property
    def logged_in(self) -> bool:
        """Whether :meth:`login` has stored an access token."""
        return self._token is not None

    def register(self, email: str, password: str) -> str:
        """Create an account and return its user id.

        Raises MlgateError: ``ALREADY_EXISTS`` when the email is taken,
        ``INVALID_ARGUMENT`` for a malformed email or a password that is not
        8 to 72 bytes.
        """
        req = auth_pb2.RegisterRequest(email=email, password=password)
        return self._call(self._auth.Register, req).user_id

    def login(self, email: str, password: str) -> str:
        """Log in, keep the access token on this client, and return it.

        Raises MlgateError: ``UNAUTHENTICATED`` for a wrong email or password.
        """
        req = auth_pb2.LoginRequest(email=email, password=password)
        token = self._call(self._auth.Login, req).access_token
        self._token = token
        return token

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
        req = prediction_pb2.PredictRequest(
            model=model,
            instances=[
                prediction_pb2.Instance(features=[float(x) for x in features])
                for features in instances
            ],
        )
        resp = self._call(self._predict.Predict, req, auth="predict")
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
        calling method, the bearer token; translate gRPC errors."""
        metadata = None
        if auth is not None:
            if self._token is None:
                raise NotLoggedInError(auth)
            metadata = (("authorization", "Bearer " + self._token),)
        try:
            return rpc(request, timeout=self.timeout, metadata=metadata)
        except grpc.RpcError as err:
            raise MlgateError.from_rpc_error(err) from err


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


def _run(client: MlgateClient, args: argparse.Namespace, password: str) -> None:
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
        try:
            user_id = client.register(args.email, password)
            print(f"registered {args.email} (user id {user_id})", file=out)
        except MlgateError as e:
            if e.code is not grpc.StatusCode.ALREADY_EXISTS:
                raise
            print(f"{args.email} is already registered", file=out)
        client.login(args.email, password)
        print(f"logged in as {args.email}", file=out)
        result = client.predict("iris", IRIS_SAMPLES)
        print(f"model {result.model} version {result.model_version}:", file=out)
        for features, p in zip(IRIS_SAMPLES, result.predictions):
            print(f"{','.join(str(x) for x in features)}  {format_prediction(p)}", file=out)
    else:  # pragma: no cover - argparse rejects unknown commands
        raise AssertionError(args.command)


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
            _run(client, args, password)
    except MlgateError as e:
        print(f"error: {e.code.name}: {e.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
