#!/usr/bin/env python3
"""Generates N realistic Kubernetes resources as one multi-document YAML stream.

The mix follows what a rendered application or a cluster dump holds: Deployments, Pods,
StatefulSets, DaemonSets, CronJobs, Jobs, Services, ConfigMaps, Ingresses and Namespaces, with
a share of them violating pod-security and best-practices rules (privileged containers, host
paths, latest tags, missing probes or limits) so that the scan reports failures as well as
passes. The output is deterministic for a given N and seed, so runs are comparable.

Usage: generate.py N [--seed S] [--malformed K] > resources.yaml
"""

import argparse
import random
import sys

REGISTRIES = ["ghcr.io/acme", "registry.example.com/team", "docker.io/library", "quay.io/org"]
IMAGES = ["nginx", "redis", "postgres", "api", "worker", "frontend", "busybox", "envoy"]
TEAMS = ["payments", "search", "platform", "checkout", "identity"]
NAMESPACES = ["default", "payments", "search", "platform", "checkout", "identity", "kube-system"]


def image(rng):
    tag = rng.choice(["1.25.3", "7.2", "16-alpine", "v2.3.1", "latest", ""])
    name = f"{rng.choice(REGISTRIES)}/{rng.choice(IMAGES)}"
    return f"{name}:{tag}" if tag else name


def container(rng, i, bad):
    lines = [
        f"- name: c{i}",
        f"  image: {image(rng)}",
        "  ports:",
        f"  - containerPort: {rng.choice([80, 443, 8080, 9090])}",
    ]
    if not bad or rng.random() < 0.5:
        lines += [
            "  resources:",
            "    requests:",
            f"      cpu: {rng.choice(['100m', '250m', '1'])}",
            f"      memory: {rng.choice(['64Mi', '256Mi', '1Gi'])}",
            "    limits:",
            f"      memory: {rng.choice(['128Mi', '512Mi', '2Gi'])}",
            "  livenessProbe:",
            "    httpGet: {path: /healthz, port: 8080}",
            "  readinessProbe:",
            "    httpGet: {path: /ready, port: 8080}",
        ]
    sc = ["  securityContext:"]
    if bad and rng.random() < 0.3:
        sc.append("    privileged: true")
    else:
        sc += [
            "    allowPrivilegeEscalation: false",
            "    runAsNonRoot: true",
            "    readOnlyRootFilesystem: true",
            "    capabilities:",
            "      drop: [ALL]",
            "    seccompProfile:",
            "      type: RuntimeDefault",
        ]
    if bad and rng.random() < 0.2:
        sc += ["    capabilities:", "      add: [NET_ADMIN]"] if "    capabilities:" not in sc else []
    return lines + sc


def pod_spec(rng, bad, indent):
    lines = []
    if bad and rng.random() < 0.2:
        lines.append("hostNetwork: true")
    lines.append("containers:")
    for i in range(rng.choice([1, 1, 2, 3])):
        lines += container(rng, i, bad)
    if bad and rng.random() < 0.3:
        lines += ["volumes:", "- name: host", "  hostPath:", "    path: /var/run/docker.sock"]
    pad = " " * indent
    return [pad + line for line in lines]


def metadata(rng, kind, n, ns, labels=True):
    out = ["metadata:", f"  name: {kind.lower()}-{n}"]
    if ns is not None:
        out.append(f"  namespace: {ns}")
    if labels:
        out += ["  labels:", f"    app.kubernetes.io/name: app-{n % 997}", f"    team: {rng.choice(TEAMS)}"]
    return out


def workload(rng, kind, api, n, ns, bad):
    doc = [f"apiVersion: {api}", f"kind: {kind}"] + metadata(rng, kind, n, ns) + ["spec:"]
    if kind == "CronJob":
        doc += ['  schedule: "*/5 * * * *"', "  jobTemplate:", "    spec:", "      template:", "        spec:"]
        doc += pod_spec(rng, bad, 10)
        return doc
    if kind != "Job":
        doc += [f"  replicas: {rng.choice([1, 2, 3])}"] if kind in ("Deployment", "StatefulSet") else []
        doc += ["  selector:", "    matchLabels:", f"      app.kubernetes.io/name: app-{n % 997}"]
    doc += ["  template:", "    metadata:", "      labels:", f"        app.kubernetes.io/name: app-{n % 997}", "    spec:"]
    doc += pod_spec(rng, bad, 6)
    return doc


def resource(rng, n):
    ns = rng.choice(NAMESPACES)
    bad = rng.random() < 0.35
    roll = rng.random()
    if roll < 0.25:
        return workload(rng, "Deployment", "apps/v1", n, ns, bad)
    if roll < 0.40:
        doc = ["apiVersion: v1", "kind: Pod"] + metadata(rng, "Pod", n, ns) + ["spec:"]
        return doc + pod_spec(rng, bad, 2)
    if roll < 0.45:
        return workload(rng, "StatefulSet", "apps/v1", n, ns, bad)
    if roll < 0.48:
        return workload(rng, "DaemonSet", "apps/v1", n, ns, bad)
    if roll < 0.51:
        return workload(rng, "CronJob", "batch/v1", n, ns, bad)
    if roll < 0.53:
        return workload(rng, "Job", "batch/v1", n, ns, bad)
    if roll < 0.70:
        svc_type = "NodePort" if bad and rng.random() < 0.3 else "ClusterIP"
        return ["apiVersion: v1", "kind: Service"] + metadata(rng, "Service", n, ns) + [
            "spec:",
            f"  type: {svc_type}",
            "  selector:",
            f"    app.kubernetes.io/name: app-{n % 997}",
            "  ports:",
            "  - port: 80",
            "    targetPort: 8080",
        ]
    if roll < 0.88:
        return ["apiVersion: v1", "kind: ConfigMap"] + metadata(rng, "ConfigMap", n, ns) + [
            "data:",
            f"  LOG_LEVEL: {rng.choice(['debug', 'info', 'warn'])}",
            f'  FEATURE_FLAGS: "a,b,{n % 7}"',
        ]
    if roll < 0.96:
        host = "" if bad and rng.random() < 0.3 else f"app-{n}.example.com"
        return ["apiVersion: networking.k8s.io/v1", "kind: Ingress"] + metadata(rng, "Ingress", n, ns) + [
            "spec:",
            "  rules:",
            f"  - host: {host!r}" if host else "  - http:",
        ] + ([
            "    http:",
        ] if host else []) + [
            "      paths:",
            "      - path: /",
            "        pathType: Prefix",
            "        backend:",
            "          service:",
            f"            name: service-{n}",
            "            port: {number: 80}",
        ]
    return ["apiVersion: v1", "kind: Namespace"] + metadata(rng, "Namespace", n, None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("count", type=int)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--malformed", type=int, default=0, help="documents to replace with broken YAML")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    broken = set(rng.sample(range(args.count), min(args.malformed, args.count)))
    out = sys.stdout
    for n in range(args.count):
        out.write("---\n")
        if n in broken:
            out.write(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken-{n}\n  labels: {{a: [1, 2}}\n")
            continue
        out.write("\n".join(resource(rng, n)))
        out.write("\n")


if __name__ == "__main__":
    main()
