#!/usr/bin/env python3
"""Structural checks of rendered manifests that schema validation cannot express.

Called by tests/manifests/check.sh, one subcommand per check; exits non-zero with a reason.
Needs PyYAML and jsonschema (both come with kubernetes-validate).

  rbac MODE RELEASE_NS WATCH_NS FILE   the operator's RBAC is exactly the agreed permission set
  pod FILE                             the Deployment meets Pod Security "restricted", probes/ports
  env-drift SRC_DIR FILE               every env var the chart sets is read by the binary
  examples CRD FILE...                 Invitation manifests validate against the CRD's schema
  argocd-cm LUA CM                     the argocd-cm patch embeds health.lua byte for byte
  gitops-paths REPO FILE...            paths referenced by the GitOps examples exist in the repo
  values-doc VALUES README SCHEMA      every value is in the README table and in the schema
"""
import json
import os
import re
import sys

import yaml


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def fail(msg):
    print(msg)
    sys.exit(1)


# ---- RBAC ---------------------------------------------------------------------------------------
# The operator's permissions, as SECURITY.md lists and justifies them: nothing more, nothing less.
OPERATOR_RULES = {
    ("iam.ccloud.dev", "invitations", "get"),
    ("iam.ccloud.dev", "invitations", "list"),
    ("iam.ccloud.dev", "invitations", "watch"),
    ("iam.ccloud.dev", "invitations", "patch"),
    ("iam.ccloud.dev", "invitations", "create"),
    ("iam.ccloud.dev", "invitations", "update"),
    ("iam.ccloud.dev", "invitations", "delete"),
    ("iam.ccloud.dev", "invitationgroups", "get"),
    ("iam.ccloud.dev", "invitationgroups", "list"),
    ("iam.ccloud.dev", "invitationgroups", "watch"),
    ("iam.ccloud.dev", "invitationgroups/status", "patch"),
    ("iam.ccloud.dev", "invitationgroups/finalizers", "update"),
    ("iam.ccloud.dev", "invitations/status", "patch"),
    ("iam.ccloud.dev", "invitations/finalizers", "update"),
    ("", "secrets", "get"),
    ("", "secrets", "patch"),
    ("events.k8s.io", "events", "create"),
    ("events.k8s.io", "events", "patch"),
}
# InvitationPolicies and the namespaces' labels they select by: cluster-wide in every mode.
POLICY_RULES = {
    ("iam.ccloud.dev", "invitationpolicies", "list"),
    ("iam.ccloud.dev", "invitationpolicies", "watch"),
    ("iam.ccloud.dev", "invitationpolicies/status", "patch"),
    ("", "namespaces", "list"),
    ("", "namespaces", "watch"),
}
LEASE_RULES = {
    ("coordination.k8s.io", "leases", v) for v in ("get", "create", "update", "patch")
}
# The claims on emails (--claims-namespace): Leases named by hashes made at run time, so not
# limited by name, and only in the claims namespace (mode `claims` renders it as CLAIMS_NS).
CLAIMS_NS = "cio-claims"
CLAIM_RULES = {
    ("coordination.k8s.io", "leases", v)
    for v in ("get", "list", "watch", "create", "update", "patch", "delete")
}
# Keyless credentials Secrets (sts.allowServiceAccountTokens, mode `satokens`): tokens of the
# Secret's namespace's ServiceAccounts, minted where the operator's other rules apply.
SA_TOKEN_RULES = {("", "serviceaccounts/token", "create")}
RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


def flatten(rules):
    out = set()
    for r in rules:
        for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            if "*" in (r.get(field) or []):
                fail(f"wildcard in {field}: {r}")
        if r.get("nonResourceURLs"):
            fail(f"unexpected nonResourceURLs rule: {r}")
        for g in r.get("apiGroups", []):
            for res in r.get("resources", []):
                for v in r.get("verbs", []):
                    out.add((g, res, v))
    return out


def check_rbac(mode, release_ns, watch_ns, path):
    docs = [d for d in load_all(path) if d.get("kind") in RBAC_KINDS]
    sa = [d for d in load_all(path) if d.get("kind") == "ServiceAccount"]
    if len(sa) != 1:
        fail(f"want exactly one ServiceAccount, got {len(sa)}")
    sa_name = sa[0]["metadata"]["name"]
    roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d
             for d in docs if d["kind"] in ("Role", "ClusterRole")}
    bindings = [d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    granted = {}  # namespace (None = cluster) -> set of (group, resource, verb)
    for b in bindings:
        ref = b["roleRef"]
        ns = b["metadata"].get("namespace")
        key = (ref["kind"], ns if ref["kind"] == "Role" else None, ref["name"])
        if key not in roles:
            fail(f"{b['kind']} {b['metadata']['name']} refers to missing {key}")
        subjects = b.get("subjects", [])
        if subjects != [{"kind": "ServiceAccount", "name": sa_name, "namespace": release_ns}]:
            fail(f"{b['kind']} {b['metadata']['name']} binds {subjects}, want only the operator SA")
        scope = None if b["kind"] == "ClusterRoleBinding" else ns
        granted.setdefault(scope, set()).update(flatten(roles[key]["rules"]))
    unbound = set(roles) - {(b["roleRef"]["kind"],
                             b["metadata"].get("namespace") if b["roleRef"]["kind"] == "Role" else None,
                             b["roleRef"]["name"]) for b in bindings}
    if unbound:
        fail(f"roles without a binding: {sorted(unbound, key=str)}")

    want = {None: set(POLICY_RULES)}
    if watch_ns:
        want[watch_ns] = set(OPERATOR_RULES)
    else:
        want[None] |= set(OPERATOR_RULES)
    if mode == "satokens":
        want[watch_ns or None] |= SA_TOKEN_RULES
    if mode == "leader":
        want.setdefault(release_ns, set()).update(LEASE_RULES)
    if mode == "claims":
        want.setdefault(CLAIMS_NS, set()).update(CLAIM_RULES)
    if granted != want:
        lines = []
        for scope in sorted(set(granted) | set(want), key=str):
            where = "cluster-wide" if scope is None else f"namespace {scope}"
            for g, r, v in sorted(granted.get(scope, set()) - want.get(scope, set())):
                lines.append(f"extra   {where}: {v} {r}.{g or 'core'}")
            for g, r, v in sorted(want.get(scope, set()) - granted.get(scope, set())):
                lines.append(f"missing {where}: {v} {r}.{g or 'core'}")
        fail("RBAC differs from the agreed set:\n" + "\n".join(lines))
    # Everything except lease creation is limited to the one lease name (the claims aside,
    # checked above to be in the claims namespace only).
    for (kind, ns, name), role in roles.items():
        if kind == "Role" and ns == CLAIMS_NS:
            continue
        for r in role["rules"]:
            if "leases" in r.get("resources", []) and set(r["verbs"]) - {"create"} and not r.get("resourceNames"):
                fail(f"{kind} {name}: lease {r['verbs']} not limited by resourceNames")


# ---- Pod ----------------------------------------------------------------------------------------
def check_pod(path):
    deps = [d for d in load_all(path) if d.get("kind") == "Deployment"]
    if len(deps) != 1:
        fail(f"want one Deployment, got {len(deps)}")
    spec = deps[0]["spec"]["template"]["spec"]
    psc = spec.get("securityContext", {})
    (c,) = spec["containers"]
    sc = c.get("securityContext", {})

    def either(key):
        return sc.get(key, psc.get(key))
    problems = []
    if either("runAsNonRoot") is not True:
        problems.append("runAsNonRoot must be true")
    if either("runAsUser") == 0:
        problems.append("runAsUser must not be 0")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation must be false")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem must be true")
    if "ALL" not in (sc.get("capabilities", {}).get("drop") or []) or sc.get("capabilities", {}).get("add"):
        problems.append("capabilities must drop ALL and add none")
    if (either("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append("seccompProfile must be RuntimeDefault")
    if sc.get("privileged"):
        problems.append("privileged")
    for v in spec.get("volumes", []):
        if "hostPath" in v:
            problems.append(f"hostPath volume {v['name']}")
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        problems.append("host namespaces")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    if ports.get("http-metrics") != 8080:
        problems.append(f"container port http-metrics must be 8080, got {ports}")
    for probe, path_ in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = (c.get(probe) or {}).get("httpGet") or {}
        if get.get("path") != path_ or get.get("port") not in ("http-metrics", 8080):
            problems.append(f"{probe} must GET {path_} on 8080, got {get}")
    env = {e["name"]: e for e in c.get("env", [])}
    if env.get("POD_NAMESPACE", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.namespace":
        problems.append("POD_NAMESPACE must come from the downward API")
    if env.get("HTTP_ADDR", {}).get("value") != "0.0.0.0:8080":
        problems.append("HTTP_ADDR must be 0.0.0.0:8080")
    if len(env) != len(c.get("env", [])):
        problems.append("duplicate env names (break server-side apply)")
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if "value" in e and re.search(r"SECRET|TOKEN$|API_KEY", e["name"]):
            problems.append(f"{e['name']} has a plaintext value")
        if ref is not None and ref.get("optional"):
            problems.append(f"{e['name']}: credentials must not be optional")
    if c.get("args") or c.get("command"):
        problems.append("no command/args: the image ENTRYPOINT already runs `run`")
    if problems:
        fail("; ".join(problems))


# ---- env drift ----------------------------------------------------------------------------------
def check_env_drift(src, path):
    deps = [d for d in load_all(path) if d.get("kind") == "Deployment"]
    names = [e["name"] for d in deps for c in d["spec"]["template"]["spec"]["containers"]
             for e in c.get("env", [])]
    text = ""
    for root, _, files in os.walk(src):
        for f in files:
            if f.endswith(".rs"):
                with open(os.path.join(root, f)) as fh:
                    text += fh.read()
    missing = []
    for n in sorted(set(names)):
        if n == "RUST_LOG" and re.search(r"EnvFilter::(try_)?from_default_env|from_env_lossy|with_default_directive", text):
            continue  # tracing-subscriber reads RUST_LOG without naming it
        if f'"{n}"' not in text:
            missing.append(n)
    if missing:
        fail("set by the chart but never read in %s: %s" % (src, ", ".join(missing)))


# ---- examples vs CRD schema ---------------------------------------------------------------------
def check_examples(crd_path, files):
    import jsonschema

    (crd,) = [d for d in load_all(crd_path) if d.get("kind") == "CustomResourceDefinition"]
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    schemas = {f"{group}/{v['name']}": v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"]}
    count = 0
    for f in files:
        for d in load_all(f):
            if d.get("kind") != kind:
                continue
            count += 1
            schema = schemas.get(d.get("apiVersion"))
            if schema is None:
                fail(f"{f}: apiVersion {d.get('apiVersion')} not served by the CRD")
            # Structural schemas are OpenAPI v3 subsets; Draft 4 semantics match them, and the
            # x-kubernetes-* keywords are ignored as unknown.
            errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(d), key=str)
            if errors:
                fail(f"{f}: " + "; ".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors))
            if d["metadata"].get("namespace") != "invitations-demo":
                fail(f"{f}: examples live in namespace invitations-demo")
    if count == 0:
        fail("no Invitation examples found")


# ---- Argo CD ------------------------------------------------------------------------------------
def check_argocd_cm(lua_path, cm_path):
    with open(lua_path) as f:
        lua = f.read()
    (cm,) = load_all(cm_path)
    key = "resource.customizations.health.iam.ccloud.dev_Invitation"
    if cm.get("kind") != "ConfigMap" or cm["metadata"].get("name") != "argocd-cm":
        fail("not the argocd-cm ConfigMap")
    if cm.get("data", {}).get(key) != lua:
        fail(f"data[{key}] differs from {lua_path}; run deploy/argocd/embed-health.sh")


def check_gitops_paths(repo, files):
    missing = []
    for f in files:
        for d in load_all(f):
            paths = []
            spec = d.get("spec", {})
            if d.get("kind") == "Application":
                paths.append(spec["source"]["path"])
            if d.get("kind") == "Kustomization" and "path" in spec:
                paths.append(spec["path"])
            for p in paths:
                if not os.path.isdir(os.path.join(repo, p)):
                    missing.append(f"{f}: {d['kind']} {d['metadata']['name']} path {p}")
    if missing:
        fail("; ".join(missing))


# ---- values documentation ---------------------------------------------------------------------
# Values that are Kubernetes objects passed through whole: documented (and schema-checked) as one.
OPAQUE = {"resources", "podSecurityContext", "securityContext", "livenessProbe", "readinessProbe"}


def leaf_keys(d, prefix=""):
    for k, v in d.items():
        key = prefix + k
        if isinstance(v, dict) and v and key not in OPAQUE:
            yield from leaf_keys(v, key + ".")
        else:
            yield key


def check_values_doc(values_path, readme_path, schema_path):
    with open(values_path) as f:
        values = yaml.safe_load(f)
    with open(readme_path) as f:
        readme = f.read()
    section = re.search(r"^## Values\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    if section is None:
        fail("README has no '## Values' section")
    documented = set(re.findall(r"^\| `([^`]+)` \|", section.group(1), re.M))
    with open(schema_path) as f:
        schema = json.load(f)
    keys = list(leaf_keys(values))
    problems = [f"{k} not in the README values table" for k in keys if k not in documented]
    problems += [f"README documents {k}, which is not a value" for k in sorted(documented - set(keys))]
    for k in keys:
        node = schema
        for part in k.split("."):
            node = node.get("properties", {}).get(part)
            if node is None:
                problems.append(f"{k} not in values.schema.json")
                break
        else:
            if not node.get("description"):
                problems.append(f"{k} has no description in values.schema.json")
    if problems:
        fail("; ".join(problems))


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "rbac":
        check_rbac(args[0], args[1], args[2], args[3])
    elif cmd == "pod":
        check_pod(args[0])
    elif cmd == "env-drift":
        check_env_drift(args[0], args[1])
    elif cmd == "examples":
        check_examples(args[0], args[1:])
    elif cmd == "argocd-cm":
        check_argocd_cm(args[0], args[1])
    elif cmd == "gitops-paths":
        check_gitops_paths(args[0], args[1:])
    elif cmd == "values-doc":
        check_values_doc(args[0], args[1], args[2])
    else:
        fail(f"unknown check {cmd}")


if __name__ == "__main__":
    main(sys.argv)
