#!/usr/bin/env python3
"""Derives the Atlassian REST contract tables the emulator contract test reads.

The test (tests/atlassian_emulator_contract.rs) must pass on a machine that has only this
repository, so it does not read Atlassian's OpenAPI files; it reads the compact tables in
tests/support/atlassian_emulator/contract/, one line per operation:

    METHOD <TAB> path <TAB> statuses <TAB> query params <TAB> path params <TAB> body fields

(lists comma-separated, empty when none). This script writes them from the vendor files:

    python3 scripts/derive-contract.py [DIR]

DIR holds the OpenAPI files (default: ../shared/reference/atlassian beside the repository):
Jira Software DC 10.3 (JSON), Confluence DC 10.0.3 (JSON) and Bitbucket DC 8.14 (YAML; needs
PyYAML: `pip install 'PyYAML>=6'` or `apt-get install python3-yaml`). Run it when a file is
updated, commit the tables, and the test checks the emulator against the new contract.
`--check` exits 1 when the committed tables differ from what the files give (for CI where the
files are present).
"""

import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
OUT = os.path.join(REPO, "tests", "support", "atlassian_emulator", "contract")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

# (vendor file, table, prefix that turns a spec path into the path the emulator serves).
# Jira's and Bitbucket's server URL is `{base}/rest`, so their spec paths start below `/rest`;
# Confluence's spec paths carry `/rest/api` themselves (its server URL is the context path).
SOURCES = [
    ("jira-software-dc-10.3-openapi.json", "jira-10.3.tsv", "/rest"),
    ("confluence-dc-10.0.3-openapi.json", "confluence-10.0.3.tsv", ""),
    ("bitbucket-dc-8.14-openapi.yaml", "bitbucket-8.14.tsv", "/rest"),
]


def load(path):
    with open(path, encoding="utf-8") as f:
        if path.endswith(".json"):
            return json.load(f)
        try:
            import yaml
        except ImportError:
            sys.exit(f"{path}: reading YAML needs PyYAML (pip install 'PyYAML>=6' or apt-get install python3-yaml)")
        return yaml.safe_load(f)


def resolve(spec, node, depth=0):
    """Follows local `$ref`s (`#/components/...`)."""
    while isinstance(node, dict) and "$ref" in node and depth < 32:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            sys.exit(f"non-local $ref {ref}")
        node = spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        depth += 1
    return node


def params(spec, item, op, where):
    names = set()
    for p in (item.get("parameters") or []) + (op.get("parameters") or []):
        p = resolve(spec, p)
        if p.get("in") == where and p.get("name"):
            names.add(str(p["name"]))
    return sorted(names)


def body_fields(spec, op):
    """Top-level properties of the JSON request body (also through `allOf`)."""
    body = resolve(spec, op.get("requestBody") or {})
    schema = ((body.get("content") or {}).get("application/json") or {}).get("schema")
    fields, todo = set(), [schema] if schema else []
    while todo:
        s = resolve(spec, todo.pop())
        if not isinstance(s, dict):
            continue
        fields.update((s.get("properties") or {}).keys())
        todo.extend(s.get("allOf") or [])
    return sorted(fields)


def rows(spec, prefix):
    out = []
    for path, item in spec.get("paths", {}).items():
        item = resolve(spec, item)
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            statuses = sorted({int(k) for k in (op.get("responses") or {}) if str(k).isdigit()})
            cells = [
                method.upper(),
                prefix + path,
                ",".join(map(str, statuses)),
                ",".join(params(spec, item, op, "query")),
                ",".join(params(spec, item, op, "path")),
                ",".join(body_fields(spec, op)),
            ]
            for c in cells:
                if "\t" in c or "\n" in c:
                    sys.exit(f"{method} {path}: a name holds a tab or newline")
            out.append("\t".join(cells))
    return sorted(out)


def table(src_dir, name, prefix):
    path = os.path.join(src_dir, name)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    lines = [
        f"# Derived from {name} (sha256 {digest}) by scripts/derive-contract.py; do not edit.",
        "# method\tpath\tstatuses\tquery\tpath params\tbody fields",
    ]
    return "\n".join(lines + rows(load(path), prefix)) + "\n"


def main(argv):
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    src_dir = args[0] if args else os.path.join(REPO, "..", "shared", "reference", "atlassian")
    missing = [n for n, _, _ in SOURCES if not os.path.exists(os.path.join(src_dir, n))]
    if missing:
        sys.exit(f"{src_dir}: missing {', '.join(missing)}; pass the folder holding the OpenAPI files")
    os.makedirs(OUT, exist_ok=True)
    stale = []
    for name, out, prefix in SOURCES:
        text = table(src_dir, name, prefix)
        dest = os.path.join(OUT, out)
        old = open(dest, encoding="utf-8").read() if os.path.exists(dest) else None
        if old == text:
            print(f"up to date  {os.path.relpath(dest, REPO)}")
        elif check:
            stale.append(os.path.relpath(dest, REPO))
        else:
            with open(dest, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote       {os.path.relpath(dest, REPO)} ({text.count(chr(10)) - 2} operations)")
    if stale:
        print("stale (run scripts/derive-contract.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
