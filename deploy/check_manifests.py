"""Checks of a rendered overlay that no schema knows (deploy/check.sh).

    python3 deploy/check_manifests.py RENDERED.yaml

The [[nodes]] table (ConfigMap distcache-nodes, nodes.toml) against the
StatefulSets: every pod <sts>-<i> has its own Service <sts>-<i>-addr (a
ClusterIP, stable when the pod moves: type ClusterIP, publishNotReadyAddresses,
selecting that pod alone by statefulset.kubernetes.io/pod-name, serving every
port the table gives the pod on the container's port), and that Service's
name is the pod's host in the table, exactly once; every host is such a
Service (a pod's own DNS name would resolve to its pod IP, which changes).
The table sets listen_host to every interface (0.0.0.0 or ::): a ClusterIP is
no interface of the pod. A pod's group (label distcache.io/group) is its
entries' group; the controller StatefulSet's pods are the entries with a
controller_port. Each StatefulSet: a headless Service with
publishNotReadyAddresses that selects its pods, podManagementPolicy
Parallel, a PodDisruptionBudget selecting its pods that keeps a majority,
required anti-affinity among its pods, probes on /livez and /readyz. Each
join Job names exactly its group's pods' Services. The ServiceMonitor selects a
Service with the port it scrapes. Exits 1 listing every problem found.
"""

import sys
import tomllib

import yaml

# The label the StatefulSet controller gives each pod: its name.
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
# The table's ports and what each is called on the pod.
ENTRY_PORTS = ("grpc_port", "resp_port", "http_port", "controller_port", "data_port")


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def address_service_of(pod):
    """The name of the per-pod Service whose ClusterIP is `pod`'s address."""
    return f"{pod}-addr"


def check_address_service(pod, labels, container, entry, service):
    """Problems of `pod`'s own Service: a ClusterIP that reaches `pod`
    alone, also before it is ready, on every port its table entry has."""
    name = address_service_of(pod)
    if service is None:
        return [f"pod {pod} has no Service {name} (its stable address)"]
    problems = []
    spec = service["spec"]
    if spec.get("type", "ClusterIP") != "ClusterIP" or spec.get("clusterIP") == "None":
        problems.append(f"Service {name}: not a ClusterIP Service (its ClusterIP is {pod}'s stable address)")
    if not spec.get("publishNotReadyAddresses"):
        problems.append(f"Service {name}: hides {pod} while it is not ready (Raft peers cannot reach each other)")
    selector = spec.get("selector") or {}
    if selector.get(POD_NAME_LABEL) != pod or not selects(selector, {**labels, POD_NAME_LABEL: pod}):
        problems.append(f"Service {name}: does not select pod {pod} alone ({POD_NAME_LABEL}: {pod})")
    container_ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    served = {}
    for port in spec.get("ports", []):
        target = port.get("targetPort", port["port"])
        served[port["port"]] = container_ports.get(target, target)
    for field in ENTRY_PORTS:
        if field not in entry:
            continue
        port = entry[field]
        if port not in served:
            problems.append(f"Service {name}: no port {port} ({field} of {pod})")
        elif served[port] != port:
            problems.append(f"Service {name}: port {port} ({field}) goes to the pod's port {served[port]}, not {port}")
        elif port not in container_ports.values():
            problems.append(f"pod {pod}: the container does not declare port {port} ({field})")
    return problems


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
    if table.get("listen_host") not in ("0.0.0.0", "::"):
        problems.append(f"nodes.toml: listen_host is {table.get('listen_host')!r}, not 0.0.0.0 or :: "
                        "(the hosts are ClusterIPs, which are no interface of the pod)")

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
        password = [e for e in container.get("env", []) if e["name"] == "DISTCACHE_REQUIREPASS"]
        reference = password[0].get("valueFrom", {}).get("secretKeyRef", {}) if password else {}
        if (reference.get("name"), reference.get("key")) != ("distcache-auth", "password") \
                and "requirepass" not in table and table.get("protected_mode") is not False:
            problems.append(f"{name}: no DISTCACHE_REQUIREPASS from Secret distcache-auth's password "
                            "(without a password the node serves clients and probes on 127.0.0.1 only)")
        for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
            if container.get(probe, {}).get("httpGet", {}).get("path") != path:
                problems.append(f"{name}: {probe} is not GET {path}")
        for i in range(replicas):
            pod = f"{name}-{i}"
            host = address_service_of(pod)
            pods[host] = (name, group, controller)
            entry = hosts.get(host)
            if entry is None:
                problems.append(f"nodes.toml: pod {pod} has no entry with host {host} (its Service)")
                continue
            problems.extend(check_address_service(pod, labels, container, entry, services.get(host)))
            if controller and "controller_port" not in entry:
                problems.append(f"nodes.toml: controller pod {pod} has no controller_port")
            if not controller and "controller_port" in entry:
                problems.append(f"nodes.toml: data pod {pod} has a controller_port")
            if str(entry.get("group")) != str(group) if group else "group" in entry:
                problems.append(f"nodes.toml: {pod} is in group {entry.get('group')}, its StatefulSet in {group}")
    for host in hosts:
        if host not in pods:
            problems.append(f"nodes.toml: host {host} is not the Service (<pod>-addr) of any StatefulSet's pod")

    for secret in by_kind.get("Secret", []):
        if secret["metadata"]["name"] == "distcache-auth":
            problems.append("Secret distcache-auth is in the manifests: every apply would reset the "
                            "password the operator created (deploy/README.md)")

    for job in by_kind.get("Job", []):
        variables = job["spec"]["template"]["spec"]["containers"][0].get("env", [])
        env = {e["name"]: e.get("value") for e in variables}
        gid = env.get("DISTCACHE_JOIN_GID")
        if gid is None:
            continue
        password = [e.get("valueFrom", {}).get("secretKeyRef", {}) for e in variables
                    if e["name"] == "DISTCACHE_PASSWORD"]
        if not password or (password[0].get("name"), password[0].get("key")) != ("distcache-auth", "password"):
            problems.append(f"Job {job['metadata']['name']}: no DISTCACHE_PASSWORD from Secret "
                            "distcache-auth's password (its admin join is refused without it)")
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
