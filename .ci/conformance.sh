#!/usr/bin/env bash
# Runs scim2-cli's `test` (scim2-tester) against a freshly started server with an empty store.
# `scim2 test` exits 1 on any check that is not SUCCESS, SKIPPED included.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${SCIM_VENV:-.ci/venv}"
if [ ! -x "$venv/bin/scim2" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check scim2-cli==0.6.0
fi
# --tests: the same feature set as `cargo test` (dev-dependencies unify features), so after the
# test step this reuses its binary instead of building the crate a second time.
cargo build --locked --quiet --tests
data="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
token="ci-conformance-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
log="$data/server.log"
SCIMBRIDGE_DATA_DIR="$data/store" SCIMBRIDGE_LISTEN="127.0.0.1:$port" SCIMBRIDGE_TOKEN="$token" \
  target/debug/scimbridge serve >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=1)" 2>/dev/null && break
  sleep 0.1
done
set +e
SCIM_CLI_HEADERS="Authorization: Bearer $token" "$venv/bin/scim2" --url "http://127.0.0.1:$port/scim/v2" test > "$data/result.txt" 2>&1
rc=$?
set -e
total=$(grep -c . "$data/result.txt" || true)
bad=$(grep -vc "SUCCESS" "$data/result.txt" || true)
cat "$data/result.txt" | tail -n 40
if [ $rc -ne 0 ]; then
  echo "conformance: FAILED ($bad of $total lines not SUCCESS)"; grep -v SUCCESS "$data/result.txt" | head -50
  echo "--- server log (tail) ---"; tail -n 30 "$log"
  exit 1
fi
ok=$(grep -c "SUCCESS" "$data/result.txt" || true)
echo "conformance: $ok passed, 0 failed"
