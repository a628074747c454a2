#!/usr/bin/env bash
# Starts authsvc and predictsvc on the embedded defaults (SQLite store and
# signing key under ./data, the bundled iris model), waits until both are
# SERVING, prints how to call them, and stops both on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

ready() { curl -fsS "http://localhost:$1/readyz" >/dev/null 2>&1; }
for port in 8081 8082; do
	if curl -s -o /dev/null "http://localhost:$port/" 2>/dev/null; then
		echo "something already answers on localhost:$port (another 'make run'?); stop it first" >&2
		exit 1
	fi
done

declare -A names
pids=()
stop() {
	trap - INT TERM EXIT
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	wait || true
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

bin/authsvc &
pids+=($!); names[$!]=authsvc
bin/predictsvc &
pids+=($!); names[$!]=predictsvc

alive() {
	for pid in "${pids[@]}"; do
		kill -0 "$pid" 2>/dev/null || { echo "${names[$pid]} exited during start-up; see its message above" >&2; return 1; }
	done
}
for _ in $(seq 1 100); do
	alive || exit 1
	if ready 8081 && ready 8082; then break; fi
	sleep 0.1
done
if ! ready 8081 || ! ready 8082 || ! alive; then
	echo "services did not become ready within 10s" >&2
	exit 1
fi

cat <<'MSG'

mlgate is SERVING
  authsvc     gRPC localhost:50051   HTTP http://localhost:8081/.well-known/jwks.json
  predictsvc  gRPC localhost:50052   HTTP http://localhost:8082/readyz

Try it (README.md walks through it):
  bin/tools/grpcurl -plaintext -d '{"email":"ada@example.com","password":"correct horse battery"}' \
      localhost:50051 auth.v1.AuthService/Register
  MLGATE_PASSWORD='correct horse battery' /usr/bin/python3 clients/python/mlgate_client.py demo --email ada@example.com

Ctrl-C stops both services.
MSG
status=0
wait -n -p exited "${pids[@]}" || status=$?
# A clean exit (status 0) is a shutdown someone asked for; say more only when
# a service failed.
if [ "$status" -ne 0 ]; then
	echo "${names[$exited]} failed (status $status); stopping the other" >&2
fi
exit "$status"
