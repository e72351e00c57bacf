"""Checks of a rendered overlay that no schema knows (deploy/check.sh).

    python3 deploy/check_manifests.py RENDERED.yaml

The [[nodes]] table (ConfigMap distcache-nodes, nodes.toml) against the
StatefulSets: every pod <sts>-<i>.<serviceName> is a host of the table
exactly once and every host is such a pod; a pod's group (label
distcache.io/group) is its entries' group; the controller StatefulSet's pods
are the entries with a controller_port. Each StatefulSet: a headless Service
with publishNotReadyAddresses that selects its pods, podManagementPolicy
Parallel, a PodDisruptionBudget selecting its pods that keeps a majority,
required anti-affinity among its pods, probes on /livez and /readyz. Each
join Job names exactly its group's pods. The ServiceMonitor selects a
Service with the port it scrapes. Exits 1 listing every problem found.
"""

import sys
import tomllib

import yaml


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check(documents):
    problems = []
    by_kind = {}
    for doc in documents:
        by_kind.setdefault(doc["kind"], []).append(doc)
    maps = [m for m in by_kind.get("ConfigMap", []) if m["metadata"]["name"] == "distcache-nodes"]
    if len(maps) != 1:
        return [f"expected one ConfigMap distcache-nodes, found {len(maps)}"]
    try:
        table = tomllib.loads(maps[0]["data"]["nodes.toml"])
    except (KeyError, tomllib.TOMLDecodeError) as error:
        return [f"distcache-nodes/nodes.toml does not parse: {error}"]
    entries = table.get("nodes", [])
    hosts = {}
    for entry in entries:
        host = entry.get("host", "")
        if host in hosts:
            problems.append(f"nodes.toml: host {host} is listed twice")
        hosts[host] = entry
    ids = [entry.get("id") for entry in entries]
    if len(ids) != len(set(ids)):
        problems.append("nodes.toml: an id is listed twice")

    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
    pdbs = by_kind.get("PodDisruptionBudget", [])
    pods = {}
    for sts in by_kind.get("StatefulSet", []):
        name = sts["metadata"]["name"]
        spec = sts["spec"]
        labels = spec["template"]["metadata"].get("labels", {})
        replicas = spec.get("replicas", 1)
        group = labels.get("distcache.io/group")
        controller = labels.get("app.kubernetes.io/component") == "controller"
        service = services.get(spec.get("serviceName", ""))
        if service is None:
            problems.append(f"{name}: serviceName {spec.get('serviceName')!r} is not a Service")
        else:
            if service["spec"].get("clusterIP") != "None":
                problems.append(f"{name}: Service {service['metadata']['name']} is not headless")
            if not service["spec"].get("publishNotReadyAddresses"):
                problems.append(f"{name}: Service {service['metadata']['name']} hides pods that are not ready (Raft peers cannot find each other)")
            if not selects(service["spec"].get("selector"), labels):
                problems.append(f"{name}: Service {service['metadata']['name']} does not select its pods")
        if spec.get("podManagementPolicy") != "Parallel":
            problems.append(f"{name}: podManagementPolicy is not Parallel (OrderedReady never gets a majority up)")
        if not selects(spec["selector"]["matchLabels"], labels):
            problems.append(f"{name}: selector does not match its pod labels")
        budgets = [p for p in pdbs if selects(p["spec"]["selector"]["matchLabels"], labels)]
        if len(budgets) != 1:
            problems.append(f"{name}: {len(budgets)} PodDisruptionBudgets select its pods, expected 1")
        else:
            budget = budgets[0]["spec"]
            majority = replicas // 2 + 1
            allowed = budget.get("maxUnavailable", replicas - budget.get("minAvailable", replicas))
            if not isinstance(allowed, int) or replicas - allowed < majority:
                problems.append(f"{name}: its PodDisruptionBudget lets a majority of {replicas} go")
        terms = (spec["template"]["spec"].get("affinity", {}).get("podAntiAffinity", {})
                 .get("requiredDuringSchedulingIgnoredDuringExecution", []))
        if not any(selects(t["labelSelector"]["matchLabels"], labels) and
                   t["topologyKey"] == "kubernetes.io/hostname" for t in terms):
            problems.append(f"{name}: no required anti-affinity among its own pods")
        container = spec["template"]["spec"]["containers"][0]
        for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
            if container.get(probe, {}).get("httpGet", {}).get("path") != path:
                problems.append(f"{name}: {probe} is not GET {path}")
        for i in range(replicas):
            pod = f"{name}-{i}.{spec.get('serviceName')}"
            pods[pod] = (name, group, controller)
            entry = hosts.get(pod)
            if entry is None:
                problems.append(f"nodes.toml: pod {pod} has no entry")
                continue
            if controller and "controller_port" not in entry:
                problems.append(f"nodes.toml: controller pod {pod} has no controller_port")
            if not controller and "controller_port" in entry:
                problems.append(f"nodes.toml: data pod {pod} has a controller_port")
            if str(entry.get("group")) != str(group) if group else "group" in entry:
                problems.append(f"nodes.toml: {pod} is in group {entry.get('group')}, its StatefulSet in {group}")
    for host in hosts:
        if host not in pods:
            problems.append(f"nodes.toml: host {host} is no pod of any StatefulSet")

    for job in by_kind.get("Job", []):
        env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        gid = env.get("DISTCACHE_JOIN_GID")
        if gid is None:
            continue
        want = sorted(p for p, (_, g, _) in pods.items() if g == gid)
        got = (env.get("DISTCACHE_JOIN_PEERS") or "").split(",")
        if got != want:
            problems.append(f"Job {job['metadata']['name']}: peers {got} are not group {gid}'s pods {want}")

    for monitor in by_kind.get("ServiceMonitor", []):
        selector = monitor["spec"]["selector"]["matchLabels"]
        chosen = [s for s in services.values() if selects(selector, s["metadata"].get("labels", {}))]
        if not chosen:
            problems.append(f"ServiceMonitor {monitor['metadata']['name']} selects no Service")
        for endpoint in monitor["spec"]["endpoints"]:
            for service in chosen:
                if endpoint["port"] not in [p["name"] for p in service["spec"]["ports"]]:
                    problems.append(f"ServiceMonitor: Service {service['metadata']['name']} has no port {endpoint['port']}")
    return problems


def main():
    with open(sys.argv[1], encoding="utf-8") as file:
        documents = [d for d in yaml.safe_load_all(file) if d]
    problems = check(documents)
    for problem in problems:
        print(f"check_manifests: {sys.argv[1]}: {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
