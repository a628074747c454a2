"""End-to-end tests of mlgate_client against real, running services.

The addresses come from the environment::

    MLGATE_AUTH_ADDR=localhost:51051 MLGATE_PREDICT_ADDR=localhost:51052 \\
        /usr/bin/python3 -m unittest discover -s clients/python/tests -v

Without them the module is skipped, unless ``CI=true``: CI must run these
tests, so there a missing address is an error.
"""

from __future__ import annotations

import os
import subprocess
import sys
import unittest
import uuid
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
from prediction.v1 import prediction_pb2, prediction_pb2_grpc  # noqa: E402  (path set by mlgate_client)

IRIS_LABELS = ["setosa", "versicolor", "virginica"]
PASSWORD = "correct horse battery staple"


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
        with MlgateClient(AUTH_ADDR, PREDICT_ADDR, timeout=1e-6) as hurried:
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
