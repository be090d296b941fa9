#!/usr/bin/env bash
# CI: the deploy/ artifacts at least parse, on a fresh machine and without a Docker engine.
#   1. every Kubernetes manifest is valid YAML with apiVersion/kind/metadata.name (PyYAML in a venv)
#   2. the systemd unit passes `systemd-analyze verify` (skipped with a message where systemd is
#      not installed; it is not installed here just for this)
#   3. the Dockerfile passes a few hadolint-style rules written out below (hadolint itself is not
#      available offline)
#   4. the example config and the ConfigMap load with the real loader: `cargo test --test integration
#      deploy_config::` covers that and runs with the rest of the tests, not here.
# Exits non-zero on the first failing group, after printing every problem of that group.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'deploy-check: %s\n' "$*" >&2; failed=1; }
failed=0

# ---- 1. Kubernetes manifests -------------------------------------------------------------------
step "YAML: deploy/k8s/*.yaml"
venv="${DEPLOY_CHECK_VENV:-${TMPDIR:-/tmp}/scimbridge-deploy-check-venv}"
if ! "$venv/bin/python" -c 'import yaml' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'PyYAML>=6,<7'
fi
"$venv/bin/python" - deploy/k8s/*.yaml <<'PY' || failed=1
import sys
import yaml

bad = 0
kinds = {}
for path in sys.argv[1:]:
    try:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        print(f"{path}: not valid YAML: {e}")
        bad += 1
        continue
    if not docs:
        print(f"{path}: no YAML document")
        bad += 1
    for i, doc in enumerate(docs):
        where = f"{path} (document {i + 1})"
        if not isinstance(doc, dict):
            print(f"{where}: a manifest must be a mapping")
            bad += 1
            continue
        kind = doc.get("kind")
        if not doc.get("apiVersion") or not kind:
            print(f"{where}: apiVersion and kind are required")
            bad += 1
            continue
        if kind != "Kustomization" and not (doc.get("metadata") or {}).get("name"):
            print(f"{where}: metadata.name is required")
            bad += 1
        kinds.setdefault(kind, []).append(doc)
        print(f"ok  {where}: {kind} {(doc.get('metadata') or {}).get('name', '')}")

# The promises the README makes about these manifests.
for sts in kinds.get("StatefulSet", []):
    spec = sts.get("spec", {})
    if spec.get("replicas") != 1:
        print("StatefulSet: replicas must be 1 (sled admits one writer)")
        bad += 1
    if not spec.get("volumeClaimTemplates"):
        print("StatefulSet: needs a volumeClaimTemplate for the data dir")
        bad += 1
    pod = spec.get("template", {}).get("spec", {})
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        print("StatefulSet: pod securityContext.runAsNonRoot must be true")
        bad += 1
    for c in pod.get("containers", []):
        sc = c.get("securityContext", {})
        for key, want in (("readOnlyRootFilesystem", True), ("allowPrivilegeEscalation", False)):
            if sc.get(key) is not want:
                print(f"StatefulSet container {c.get('name')}: securityContext.{key} must be {want}")
                bad += 1
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            print(f"StatefulSet container {c.get('name')}: capabilities.drop must include ALL")
            bad += 1
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            if c.get(probe, {}).get("httpGet", {}).get("path") != path:
                print(f"StatefulSet container {c.get('name')}: {probe} must GET {path}")
                bad += 1
        if not c.get("resources", {}).get("limits") or not c.get("resources", {}).get("requests"):
            print(f"StatefulSet container {c.get('name')}: resources.requests and .limits are required")
            bad += 1
if not kinds.get("StatefulSet"):
    print("no StatefulSet found")
    bad += 1
for kind in ("Secret", "ConfigMap", "Service"):
    if not kinds.get(kind):
        print(f"no {kind} found")
        bad += 1
sys.exit(1 if bad else 0)
PY

# ---- 2. systemd unit ---------------------------------------------------------------------------
step "systemd-analyze verify deploy/scimbridge.service"
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify checks that ExecStart's program exists: point it at a stand-in executable.
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    printf '#!/bin/sh\nexit 0\n' >"$work/scimbridge"
    chmod +x "$work/scimbridge"
    sed "s#/usr/local/bin/scimbridge#$work/scimbridge#g" deploy/scimbridge.service >"$work/scimbridge.service"
    # verify exits 0 even for unknown keys and unparsable values ("…, ignoring"), so any line that
    # points into the unit file counts as a failure. Other lines are about the host (no running
    # systemd in a container) and are shown but not held against the unit.
    rc=0
    out="$(systemd-analyze verify --man=no "$work/scimbridge.service" 2>&1)" || rc=$?
    [ -n "$out" ] && printf '%s\n' "$out"
    if printf '%s\n' "$out" | grep -q 'scimbridge\.service:[0-9]'; then
        fail "systemd-analyze verify found problems in deploy/scimbridge.service (line numbers above)"
    elif [ "$rc" -ne 0 ] && printf '%s\n' "$out" | grep -q 'scimbridge\.service'; then
        fail "systemd-analyze verify rejected deploy/scimbridge.service"
    else
        echo "ok  systemd-analyze verify"
    fi
else
    echo "skipped: systemd-analyze is not installed (apt-get install systemd provides it)"
fi
# The keys the README promises, whether or not systemd-analyze is here.
for key in 'DynamicUser=yes' 'StateDirectory=scimbridge' 'ProtectSystem=strict' 'ProtectHome=yes' \
    'PrivateTmp=yes' 'NoNewPrivileges=yes' 'PrivateDevices=yes' 'ProtectKernelTunables=yes' \
    'ProtectKernelModules=yes' 'ProtectKernelLogs=yes' 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
    'SystemCallFilter=@system-service' 'CapabilityBoundingSet=' 'MemoryDenyWriteExecute=yes' \
    'LockPersonality=yes' 'EnvironmentFile=-/etc/scimbridge/env' \
    'ExecStart=/usr/local/bin/scimbridge serve --config /etc/scimbridge/scimbridge.toml' \
    'Restart=on-failure' 'KillSignal=SIGINT' 'TimeoutStopSec=40'; do
    grep -qxF "$key" deploy/scimbridge.service || fail "deploy/scimbridge.service lacks the line '$key'"
done

# ---- 3. Dockerfile -----------------------------------------------------------------------------
step "Dockerfile lint: deploy/Dockerfile"
python3 - deploy/Dockerfile <<'PY' || failed=1
import re
import sys

path = sys.argv[1]
text = open(path, encoding="utf-8").read()
# Join continuation lines; drop comments and blank lines (as the Dockerfile parser does).
logical, buf = [], ""
for raw in text.splitlines():
    line = raw.strip()
    if not buf and (not line or line.startswith("#")):
        continue
    if buf and line.startswith("#"):
        continue
    if line.endswith("\\"):
        buf += line[:-1] + " "
        continue
    logical.append(buf + line)
    buf = ""
if buf:
    logical.append(buf)

KNOWN = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
         "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "MAINTAINER"}
bad = 0
stages, users, last_from = [], [], -1
def problem(msg):
    global bad
    bad += 1
    print(f"{path}: {msg}")

for n, line in enumerate(logical):
    word, _, rest = line.partition(" ")
    inst = word.upper()
    if inst not in KNOWN:
        problem(f"unknown instruction {word!r}")
        continue
    if inst == "FROM":
        args = [a for a in rest.split() if not a.startswith("--")]
        image = args[0] if args else ""
        alias = args[2] if len(args) >= 3 and args[1].upper() == "AS" else None
        last_from = n
        if image in stages or image == "scratch":
            pass
        elif "@sha256:" in image:
            pass
        elif ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
            problem(f"FROM {image}: pin a tag other than latest (or a digest)")
        if alias:
            stages.append(alias)
    elif inst == "USER":
        users.append((n, rest.strip()))
    elif inst == "ADD" and re.search(r"\bhttps?://", rest):
        problem("ADD of a URL: download in a RUN step with a checksum, or COPY a vendored file")
    elif inst == "MAINTAINER":
        problem("MAINTAINER is deprecated; use LABEL org.opencontainers.image.authors")
    elif inst in ("CMD", "ENTRYPOINT") and not rest.strip().startswith("["):
        problem(f"{inst} in shell form: use the exec (JSON array) form so signals reach the process")
    elif inst == "RUN" and re.search(r"\bsudo\b", rest):
        problem("RUN with sudo")

if last_from < 0:
    problem("no FROM")
final_users = [u for n, u in users if n > last_from]
if not final_users:
    problem("the final stage has no USER: the container would run as root")
elif final_users[-1].split(":")[0] in ("root", "0"):
    problem("the final stage runs as root")
if not any(l.upper().startswith("EXPOSE ") and "8080" in l for l in logical):
    problem("EXPOSE 8080 is missing")
if not any(l.upper().startswith("VOLUME ") and "/var/lib/scimbridge" in l for l in logical):
    problem("VOLUME /var/lib/scimbridge is missing")
print("ok  Dockerfile" if not bad else f"{bad} problem(s)")
sys.exit(1 if bad else 0)
PY
for ignored in target/ data/ .git/; do
    grep -qxF "$ignored" .dockerignore || fail ".dockerignore lacks $ignored"
done

if [ "$failed" -ne 0 ]; then
    echo "deploy-check: FAILED" >&2
    exit 1
fi
echo
echo "deploy-check: all deploy artifacts parse"
