"""End-to-end tests of mlgate_client against real, running services.

The addresses come from the environment::

    MLGATE_AUTH_ADDR=localhost:51051 MLGATE_PREDICT_ADDR=localhost:51052 \\
        /usr/bin/python3 -m unittest discover -s clients/python/tests -v

Without them the module is skipped, unless ``CI=true``: CI must run these
tests, so there a missing address is an error.
"""

from __future__ import annotations

import os
import socket
import re
import subprocess
import sys
import time
import unittest
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import grpc

AUTH_ADDR = os.environ.get("MLGATE_AUTH_ADDR", "")
PREDICT_ADDR = os.environ.get("MLGATE_PREDICT_ADDR", "")

if not (AUTH_ADDR and PREDICT_ADDR):
    _unset = [name for name, value in (("MLGATE_AUTH_ADDR", AUTH_ADDR),
                                       ("MLGATE_PREDICT_ADDR", PREDICT_ADDR)) if not value]
    _missing = " and ".join(_unset) + (" is" if len(_unset) == 1 else " are")
    if os.environ.get("CI", "").strip().lower() == "true":
        raise RuntimeError(
            f"CI=true but {_missing} not set: CI must run the Python client tests "
            "against running authsvc and predictsvc"
        )
    raise unittest.SkipTest(
        f"{_missing} not set: start authsvc and predictsvc and set both to run these tests"
    )

CLIENT_DIR = Path(__file__).resolve().parents[1]
CLIENT_SCRIPT = CLIENT_DIR / "mlgate_client.py"
sys.path.insert(0, str(CLIENT_DIR))

from mlgate_client import (  # noqa: E402  (needs CLIENT_DIR on sys.path)
    IRIS_SAMPLES,
    MlgateClient,
    MlgateError,
    NotLoggedInError,
)
from auth.v1 import auth_pb2, auth_pb2_grpc  # noqa: E402  (path set by mlgate_client)
from prediction.v1 import prediction_pb2, prediction_pb2_grpc  # noqa: E402  (path set by mlgate_client)

IRIS_LABELS = ["setosa", "versicolor", "virginica"]
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new password"

#: predictsvc reads authsvc's revocation feed every second; a logged-out
#: session's access tokens must be refused within this.
REVOCATION_LIMIT = 5.0


def unique_email() -> str:
    return f"py-client-{uuid.uuid4().hex}@example.com"


def setUpModule() -> None:
    """Fail fast, with the addresses in the message, if a service is not listening."""
    for name, addr in (("authsvc", AUTH_ADDR), ("predictsvc", PREDICT_ADDR)):
        with grpc.insecure_channel(addr) as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=15)
            except grpc.FutureTimeoutError:
                raise RuntimeError(f"{name} is not reachable at {addr} after 15 s") from None


class ClientTestCase(unittest.TestCase):
    """Gives each test a fresh, not-yet-logged-in client."""

    def setUp(self) -> None:
        self.client = MlgateClient(AUTH_ADDR, PREDICT_ADDR, timeout=10.0)
        self.addCleanup(self.client.close)

    def assertStatus(self, ctx: Any, code: grpc.StatusCode) -> None:
        """Assert that the MlgateError caught by ``ctx`` has exactly ``code``."""
        err = ctx.exception
        self.assertIs(err.code, code, f"want {code.name}, got {err.code.name}: {err.message}")
        self.assertTrue(err.message, "the status message should say what went wrong")


class AuthTest(ClientTestCase):
    def test_register_returns_user_id(self) -> None:
        user_id = self.client.register(unique_email(), PASSWORD)
        self.assertIsInstance(user_id, str)
        self.assertTrue(user_id.strip(), "user id should not be empty")

    def test_register_twice_is_already_exists(self) -> None:
        email = unique_email()
        self.client.register(email, PASSWORD)
        with self.assertRaises(MlgateError) as ctx:
            self.client.register(email, PASSWORD)
        self.assertStatus(ctx, grpc.StatusCode.ALREADY_EXISTS)

    def test_register_same_email_other_case_is_already_exists(self) -> None:
        email = unique_email()
        self.client.register(email, PASSWORD)
        with self.assertRaises(MlgateError) as ctx:
            self.client.register("  " + email.upper() + " ", PASSWORD)
        self.assertStatus(ctx, grpc.StatusCode.ALREADY_EXISTS)

    def test_register_seven_byte_password_is_invalid_argument(self) -> None:
        with self.assertRaises(MlgateError) as ctx:
            self.client.register(unique_email(), "1234567")
        self.assertStatus(ctx, grpc.StatusCode.INVALID_ARGUMENT)

    def test_login_wrong_password_is_unauthenticated(self) -> None:
        email = unique_email()
        self.client.register(email, PASSWORD)
        with self.assertRaises(MlgateError) as ctx:
            self.client.login(email, PASSWORD + "!")
        self.assertStatus(ctx, grpc.StatusCode.UNAUTHENTICATED)
        self.assertFalse(self.client.logged_in)

    def test_login_returns_and_stores_token(self) -> None:
        email = unique_email()
        self.client.register(email, PASSWORD)
        token = self.client.login(email.upper(), PASSWORD)
        self.assertEqual(token.count("."), 2, "the access token should be a JWT")
        self.assertTrue(self.client.logged_in)
        self.assertNotIn(token, repr(self.client))

    def test_jwks_has_ed25519_keys(self) -> None:
        jwks = self.client.jwks()
        self.assertIsInstance(jwks, dict)
        self.assertGreaterEqual(len(jwks["keys"]), 1)
        for key in jwks["keys"]:
            self.assertEqual(key["kty"], "OKP")
            self.assertEqual(key["crv"], "Ed25519")
            self.assertEqual(key["alg"], "EdDSA")
            self.assertTrue(key["kid"])
            self.assertTrue(key["x"])

    def test_every_call_has_a_deadline(self) -> None:
        # A socket that accepts connections but never speaks gRPC: only the
        # client's own deadline can end the call.
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen()
            addr = "127.0.0.1:%d" % silent.getsockname()[1]
            with MlgateClient(addr, addr, timeout=0.3) as hurried:
                with self.assertRaises(MlgateError) as ctx:
                    hurried.jwks()
        self.assertStatus(ctx, grpc.StatusCode.DEADLINE_EXCEEDED)


class PredictTest(ClientTestCase):
    email: str

    @classmethod
    def setUpClass(cls) -> None:
        cls.email = unique_email()
        with MlgateClient(AUTH_ADDR, PREDICT_ADDR) as client:
            client.register(cls.email, PASSWORD)

    def setUp(self) -> None:
        super().setUp()
        self.client.login(self.email, PASSWORD)

    def test_predict_iris_samples(self) -> None:
        result = self.client.predict("iris", IRIS_SAMPLES)
        self.assertEqual(result.model, "iris")
        self.assertTrue(result.model_version)
        self.assertEqual([p.label for p in result.predictions], IRIS_LABELS)
        for p in result.predictions:
            self.assertEqual(list(p.probabilities), IRIS_LABELS)
            self.assertAlmostEqual(sum(p.probabilities.values()), 1.0, places=5)
            self.assertEqual(max(p.probabilities, key=p.probabilities.__getitem__), p.label)
            for prob in p.probabilities.values():
                self.assertGreaterEqual(prob, 0.0)
                self.assertLessEqual(prob, 1.0)

    def test_predict_three_features_is_invalid_argument(self) -> None:
        with self.assertRaises(MlgateError) as ctx:
            self.client.predict("iris", [[5.1, 3.5, 1.4]])
        self.assertStatus(ctx, grpc.StatusCode.INVALID_ARGUMENT)

    def test_predict_unknown_model_is_not_found(self) -> None:
        with self.assertRaises(MlgateError) as ctx:
            self.client.predict("no-such-model", [[5.1, 3.5, 1.4, 0.2]])
        self.assertStatus(ctx, grpc.StatusCode.NOT_FOUND)

    def test_list_models_has_iris(self) -> None:
        models = {m.name: m for m in self.client.list_models()}
        self.assertIn("iris", models)
        iris = models["iris"]
        self.assertEqual(len(iris.feature_names), 4)
        self.assertEqual(iris.labels, IRIS_LABELS)

    def test_get_model_iris_and_unknown(self) -> None:
        iris = self.client.get_model("iris")
        self.assertEqual(iris.name, "iris")
        self.assertEqual(iris.labels, IRIS_LABELS)
        with self.assertRaises(MlgateError) as ctx:
            self.client.get_model("no-such-model")
        self.assertStatus(ctx, grpc.StatusCode.NOT_FOUND)


class UnauthenticatedTest(ClientTestCase):
    def test_predict_before_login_raises_not_logged_in(self) -> None:
        with self.assertRaises(NotLoggedInError) as ctx:
            self.client.predict("iris", [[5.1, 3.5, 1.4, 0.2]])
        self.assertIs(ctx.exception.code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("login()", ctx.exception.message)
        for call in (self.client.list_models, lambda: self.client.get_model("iris")):
            with self.assertRaises(NotLoggedInError):
                call()

    def test_raw_predict_without_metadata_is_unauthenticated(self) -> None:
        with grpc.insecure_channel(PREDICT_ADDR) as channel:
            stub = prediction_pb2_grpc.PredictionServiceStub(channel)
            request = prediction_pb2.PredictRequest(
                model="iris", instances=[prediction_pb2.Instance(features=[5.1, 3.5, 1.4, 0.2])]
            )
            with self.assertRaises(grpc.RpcError) as ctx:
                stub.Predict(request, timeout=10)
        self.assertIs(ctx.exception.code(), grpc.StatusCode.UNAUTHENTICATED)


def raw_predict(access_token: str) -> None:
    """Predict one Iris sample with exactly this access token, bypassing the client."""
    with grpc.insecure_channel(PREDICT_ADDR) as channel:
        stub = prediction_pb2_grpc.PredictionServiceStub(channel)
        stub.Predict(
            prediction_pb2.PredictRequest(
                model="iris", instances=[prediction_pb2.Instance(features=IRIS_SAMPLES[0])]),
            metadata=(("authorization", "Bearer " + access_token),), timeout=10,
        )


def raw_refresh(refresh_token: str) -> auth_pb2.RefreshResponse:
    """Call Refresh with exactly this refresh token, bypassing the client."""
    with grpc.insecure_channel(AUTH_ADDR) as channel:
        return auth_pb2_grpc.AuthServiceStub(channel).Refresh(
            auth_pb2.RefreshRequest(refresh_token=refresh_token), timeout=10)


class SessionTest(ClientTestCase):
    """Refresh, logout, logout_all and change_password against the real services."""

    def setUp(self) -> None:
        super().setUp()
        self.email = unique_email()
        self.client.register(self.email, PASSWORD)

    def other_client(self) -> MlgateClient:
        client = MlgateClient(AUTH_ADDR, PREDICT_ADDR, timeout=10.0)
        self.addCleanup(client.close)
        return client

    def assertRefusedWithin(self, access_token: str, limit: float = REVOCATION_LIMIT) -> float:
        """Poll predictsvc until it refuses the token with UNAUTHENTICATED;
        until then every call must succeed.  Returns the seconds it took."""
        start = time.monotonic()
        while True:
            try:
                raw_predict(access_token)
            except grpc.RpcError as err:
                self.assertIs(err.code(), grpc.StatusCode.UNAUTHENTICATED,
                              f"want OK until refused with UNAUTHENTICATED, got {err.code().name}: {err.details()}")
                return time.monotonic() - start
            elapsed = time.monotonic() - start
            if elapsed > limit:
                self.fail(f"predictsvc still accepts the ended session's access token after {elapsed:.1f}s")
            time.sleep(0.05)

    def assertRefreshRefused(self, refresh_token: str) -> None:
        with self.assertRaises(grpc.RpcError) as ctx:
            raw_refresh(refresh_token)
        self.assertIs(ctx.exception.code(), grpc.StatusCode.UNAUTHENTICATED, ctx.exception.details())

    def test_login_keeps_refresh_token_out_of_repr(self) -> None:
        access = self.client.login(self.email, PASSWORD)
        refresh = self.client.refresh_token
        self.assertIsInstance(refresh, str)
        self.assertTrue(refresh)
        self.assertNotEqual(refresh, access)
        self.assertEqual(self.client.access_token, access)
        self.assertNotIn(refresh, repr(self.client))
        self.assertNotIn(access, repr(self.client))
        now = datetime.now(timezone.utc)
        self.assertGreater(self.client.access_expire_time, now)
        self.assertGreater(self.client.refresh_expire_time, self.client.access_expire_time)

    def test_refresh_rotates_both_tokens_and_spends_the_old_one(self) -> None:
        old_access = self.client.login(self.email, PASSWORD)
        old_refresh = self.client.refresh_token
        new_access = self.client.refresh()
        self.assertNotEqual(new_access, old_access)
        self.assertEqual(self.client.access_token, new_access)
        self.assertIsNotNone(self.client.refresh_token)
        self.assertNotEqual(self.client.refresh_token, old_refresh)
        self.assertEqual(self.client.predict("iris", IRIS_SAMPLES[:1]).predictions[0].label, "setosa")
        self.assertRefreshRefused(old_refresh)

    def test_reusing_a_spent_refresh_token_ends_the_session(self) -> None:
        self.client.login(self.email, PASSWORD)
        spent = self.client.refresh_token
        new_access = self.client.refresh()
        self.assertRefreshRefused(spent)  # looks like theft: authsvc ends the whole session
        with self.assertRaises(MlgateError) as ctx:
            self.client.refresh()  # the new refresh token, never used before
        self.assertStatus(ctx, grpc.StatusCode.UNAUTHENTICATED)
        self.assertIsNone(self.client.refresh_token, "a refused refresh token should be dropped")
        self.assertRefusedWithin(new_access)

    def test_logout_then_old_access_token_is_refused(self) -> None:
        self.client.login(self.email, PASSWORD)
        self.client.predict("iris", IRIS_SAMPLES[:1])
        access, refresh = self.client.access_token, self.client.refresh_token
        self.client.logout()
        self.assertFalse(self.client.logged_in)
        self.assertIsNone(self.client.access_token)
        self.assertIsNone(self.client.refresh_token)
        with self.assertRaises(NotLoggedInError):
            self.client.predict("iris", IRIS_SAMPLES[:1])
        with self.assertRaises(NotLoggedInError):
            self.client.refresh()
        self.client.logout()  # nothing kept: nothing to do, no error
        self.assertRefusedWithin(access)
        self.assertRefreshRefused(refresh)

    def test_logout_all_ends_both_sessions(self) -> None:
        self.client.login(self.email, PASSWORD)
        other = self.other_client()
        other.login(self.email, PASSWORD)
        self.assertEqual(self.client.logout_all(), 2)
        self.assertFalse(self.client.logged_in)
        self.assertIsNone(self.client.refresh_token)
        with self.assertRaises(MlgateError) as ctx:
            other.refresh()
        self.assertStatus(ctx, grpc.StatusCode.UNAUTHENTICATED)
        self.assertRefusedWithin(other.access_token)

    def test_change_password_ends_the_other_session(self) -> None:
        self.client.login(self.email, PASSWORD)
        other = self.other_client()
        other.login(self.email, PASSWORD)
        self.assertEqual(self.client.change_password(PASSWORD, NEW_PASSWORD), 1)
        with self.assertRaises(MlgateError) as ctx:
            other.refresh()
        self.assertStatus(ctx, grpc.StatusCode.UNAUTHENTICATED)
        # This client's session goes on.
        self.client.refresh()
        self.client.predict("iris", IRIS_SAMPLES[:1])
        with self.assertRaises(MlgateError) as ctx:
            self.other_client().login(self.email, PASSWORD)
        self.assertStatus(ctx, grpc.StatusCode.UNAUTHENTICATED)
        self.assertTrue(self.other_client().login(self.email, NEW_PASSWORD))

    def test_change_password_with_wrong_old_password_is_unauthenticated(self) -> None:
        self.client.login(self.email, PASSWORD)
        with self.assertRaises(MlgateError) as ctx:
            self.client.change_password(PASSWORD + "!", NEW_PASSWORD)
        self.assertStatus(ctx, grpc.StatusCode.UNAUTHENTICATED)
        self.assertTrue(self.other_client().login(self.email, PASSWORD))

    def test_non_admin_gets_permission_denied(self) -> None:
        self.client.login(self.email, PASSWORD)
        calls = {
            "list_users": self.client.list_users,
            "list_audit_events": self.client.list_audit_events,
            "disable_user": lambda: self.client.disable_user("someone"),
            "enable_user": lambda: self.client.enable_user("someone"),
            "set_user_roles": lambda: self.client.set_user_roles("someone", ["admin"]),
        }
        for name, call in calls.items():
            with self.subTest(call=name):
                with self.assertRaises(MlgateError) as ctx:
                    call()
                self.assertStatus(ctx, grpc.StatusCode.PERMISSION_DENIED)

    def test_protected_calls_before_login_raise_not_logged_in(self) -> None:
        calls = (self.client.logout_all, lambda: self.client.change_password(PASSWORD, NEW_PASSWORD),
                 self.client.list_users, self.client.list_audit_events,
                 lambda: self.client.disable_user("someone"),
                 lambda: self.client.enable_user("someone"),
                 lambda: self.client.set_user_roles("someone", ["user"]), self.client.refresh)
        for call in calls:
            with self.assertRaises(NotLoggedInError):
                call()


class AutoRefreshTest(ClientTestCase):
    """The client's one refresh-and-retry when its access token has expired.

    The services' tokens live 15 minutes, so expiry is simulated: the client is
    given a token predictsvc refuses (UNAUTHENTICATED) and told it expired.
    """

    def setUp(self) -> None:
        super().setUp()
        email = unique_email()
        self.client.register(email, PASSWORD)
        self.client.login(email, PASSWORD)
        self.client._access_token = "not.a.token"  # refused by predictsvc as UNAUTHENTICATED

    def test_expired_access_token_is_refreshed_once_and_the_call_retried(self) -> None:
        refresh = self.client.refresh_token
        self.client._access_expire_time = datetime.now(timezone.utc) - timedelta(seconds=1)
        result = self.client.predict("iris", IRIS_SAMPLES[:1])
        self.assertEqual(result.predictions[0].label, "setosa")
        self.assertNotEqual(self.client.refresh_token, refresh)
        self.assertNotEqual(self.client.access_token, "not.a.token")
        self.assertGreater(self.client.access_expire_time, datetime.now(timezone.utc))

    def test_unexpired_access_token_is_not_refreshed(self) -> None:
        refresh = self.client.refresh_token
        with self.assertRaises(MlgateError) as ctx:
            self.client.predict("iris", IRIS_SAMPLES[:1])
        self.assertStatus(ctx, grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(self.client.refresh_token, refresh)

    def test_no_refresh_when_auto_refresh_is_off(self) -> None:
        refresh = self.client.refresh_token
        self.client._access_expire_time = datetime.now(timezone.utc) - timedelta(seconds=1)
        self.client.auto_refresh = False
        with self.assertRaises(MlgateError) as ctx:
            self.client.predict("iris", IRIS_SAMPLES[:1])
        self.assertStatus(ctx, grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(self.client.refresh_token, refresh)


class CommandLineTest(unittest.TestCase):
    def run_cli(self, *args: str, password_env: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, MLGATE_AUTH_ADDR=AUTH_ADDR, MLGATE_PREDICT_ADDR=PREDICT_ADDR)
        env.pop("MLGATE_PASSWORD", None)
        env.pop("PYTHONPATH", None)  # the script must find gen/python by itself
        if password_env is not None:
            env["MLGATE_PASSWORD"] = password_env
        # Run from an unrelated directory so nothing depends on the working directory.
        return subprocess.run(
            [sys.executable, str(CLIENT_SCRIPT), *args],
            env=env, cwd="/", stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=60,
        )

    def test_demo_prints_three_labels(self) -> None:
        email = unique_email()
        # The first run registers; the second finds the account and carries on.
        for first_line in (f"registered {email} (user id ", f"{email} is already registered"):
            with self.subTest(first_line=first_line):
                proc = self.run_cli("demo", "--email", email, password_env=PASSWORD)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertEqual(proc.stderr, "")
                lines = proc.stdout.splitlines()
                self.assertTrue(lines[0].startswith(first_line), proc.stdout)
                self.assertEqual([line.split()[1] for line in lines[-3:]], IRIS_LABELS, proc.stdout)
                self.assertNotIn(PASSWORD, proc.stdout)

    def test_session_demo_shows_logged_out_token_refused(self) -> None:
        email = unique_email()
        proc = self.run_cli("session-demo", "--email", email, password_env=PASSWORD)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stderr, "")
        lines = proc.stdout.splitlines()
        self.assertTrue(lines[0].startswith(f"registered {email} (user id "), proc.stdout)
        self.assertEqual(lines[1], f"logged in as {email}")
        probs = r"setosa=0\.\d{3} versicolor=0\.\d{3} virginica=0\.\d{3}$"
        self.assertRegex(lines[2], r"^predict: setosa  " + probs)
        self.assertEqual(lines[3], "refreshed: new access token and refresh token")
        self.assertRegex(lines[4], r"^predict with the new access token: setosa  " + probs)
        self.assertEqual(lines[5], "logged out")
        self.assertRegex(lines[6], r"^after logout: UNAUTHENTICATED \(refused after \d+\.\ds\)$")
        self.assertEqual(len(lines), 7, proc.stdout)
        seconds = float(re.search(r"after (\d+\.\d)s", lines[6]).group(1))
        self.assertLessEqual(seconds, REVOCATION_LIMIT, lines[6])
        self.assertNotIn(PASSWORD, proc.stdout)
        self.assertNotIn("eyJ", proc.stdout, "no JWT should be printed")

    def test_wrong_password_exits_1(self) -> None:
        email = unique_email()
        with MlgateClient(AUTH_ADDR, PREDICT_ADDR) as client:
            client.register(email, PASSWORD)
        wrong = "not the password"
        proc = self.run_cli("login", "--email", email, "--password", wrong)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stdout, "")
        self.assertTrue(proc.stderr.startswith("error: UNAUTHENTICATED: "), proc.stderr)
        self.assertNotIn(wrong, proc.stderr)

    def test_predict_prints_one_line_per_instance(self) -> None:
        email = unique_email()
        with MlgateClient(AUTH_ADDR, PREDICT_ADDR) as client:
            client.register(email, PASSWORD)
        proc = self.run_cli(
            "predict", "--email", email, "--model", "iris",
            "--features", "5.1,3.5,1.4,0.2", "--features", "6.3,3.3,6.0,2.5",
            password_env=PASSWORD,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = proc.stdout.splitlines()
        self.assertEqual(len(lines), 2, proc.stdout)
        self.assertRegex(lines[0], r"^setosa  setosa=0\.\d{3} versicolor=0\.\d{3} virginica=0\.\d{3}$")
        self.assertTrue(lines[1].startswith("virginica  "), lines[1])


if __name__ == "__main__":
    unittest.main()
