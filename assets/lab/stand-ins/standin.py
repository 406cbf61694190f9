#!/usr/bin/env python3
"""kswizard lab STAND-IN for kubeadm, kubelet, kubectl, crictl, containerd and runc: NOT the real tools.

The lab cannot have the Kubernetes binaries, so these keep the real tools' command line for what
kswizard's install plan uses, and do real work behind it where the plan can check it:
- `kubeadm init` makes a real CA and apiserver certificate (openssl), writes the apiserver's static
  pod manifest (/etc/kubernetes/manifests/kube-apiserver.yaml, kube-apiserver's own flags such as
  --etcd-servers), from which the kubelet starts a TLS listener on the node's IP:6443 (the
  "apiserver") answering /readyz, /healthz and /livez, and keeps the cluster's
  state (bootstrap tokens, joined nodes) in the real etcd, as the apiserver does: the external etcd
  of the config's etcd.external, or, without it, kubeadm's local etcd ("stacked"): the etcd CA and
  certificates under /etc/kubernetes/pki/etcd/ and one member of the REAL etcd (`etcd` on PATH),
  bound to the node IP with TLS, as the systemd unit kswizard-standin-etcd.service (the stand-in
  for kubeadm's etcd static pod);
- `kubeadm join` checks the CA hash and the token against that apiserver; with --control-plane it
  starts a listener of its own, and with stacked etcd receives the etcd CA (as upload-certs hands
  it on: never in argv or a log), `etcdctl member add`s itself and starts its member, named after
  the node, with --initial-cluster-state existing;
- `kubeadm init phase upload-config kubeadm --config` stores the config's etcd endpoints as the
  cluster's (what later joins get), as kubeadm updates its kubeadm-config ConfigMap;
- `kubelet` runs the apiserver's static pod (a transient systemd unit, so it outlives a kubelet
  restart like a container), restarts it when its manifest changes and stops it when the manifest
  goes; it runs as kubelet.service: it exits until kubeadm wrote its config and while containerd
  does not answer (systemd restarts it), then posts heartbeats, so `kubectl get nodes` shows Ready
  only for nodes whose kubelet is alive, and only once a CNI (Calico's calico-node DaemonSet) is
  applied, as real kubelets report "network plugin not ready" until then;
- `containerd` runs as containerd.service (Type=notify), reads its config.toml and serves its unix
  socket; `crictl info` asks that socket and reports the runtime ready only when it answers;
- `kubectl apply -f` records the manifest's objects in etcd (`kubectl get KIND` lists them); once
  the KubeSphere installer and its ClusterConfiguration are applied, every node's kubelet serves a
  small console page (naming itself a stand-in) on <node ip>:<console port>, as a NodePort does.
"""
import base64
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import socketserver
import ssl
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTRACT = "v1.28.2"
VERSION = CONTRACT + "-kswizard-lab-standin"
K8S = "/etc/kubernetes"
PKI = K8S + "/pki"
ETCD_PKI = PKI + "/etcd"
ETCD_DATA = "/var/lib/etcd"
ETCD_UNIT = "kswizard-standin-etcd.service"
# kubeadm's static pod manifest of the apiserver: the kubelet runs what it says (and restarts it
# when it changes, stops it when the file goes), as the real kubelet does with static pods.
MANIFESTS = K8S + "/manifests"
APISERVER_MANIFEST = MANIFESTS + "/kube-apiserver.yaml"
# The apiserver "container": a transient systemd unit of its own, so that it outlives a kubelet
# restart as a container under containerd does.
APISERVER_UNIT = "kswizard-standin-kube-apiserver.service"
# The kubelet's delay before it starts again a static pod that exited on its own (CrashLoopBackOff's
# first step); a changed manifest is acted on at once.
POD_BACKOFF_S = 10
RUN = "/var/lib/kubelet/standin"
PREFIX = "/kswizard-standin/"
HEARTBEAT_S = 5
KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"
KUBEADM_FLAGS = "/var/lib/kubelet/kubeadm-flags.env"
KUBELET_HEALTHZ_PORT = 10248
# What makes the cluster's network and the KubeSphere console "run": (kind, namespace, name).
CNI_OBJECT = ("DaemonSet", "kube-system", "calico-node")
KS_INSTALLER = ("Deployment", "kubesphere-system", "ks-installer")
KS_CONFIG = ("ClusterConfiguration", "kubesphere-system", "ks-installer")


def die(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def sh(*args, data=None):
    return subprocess.run(args, input=data, check=True, capture_output=True).stdout


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(path, mode)


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def flags(argv):
    """--key value / --key=value / --switch (and kubectl's -f FILE, -n NS, -o FORMAT, -A) into a
    dict, positional arguments into a list."""
    opts, pos, i = {}, [], 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-") and len(a) > 1:
            key, eq, val = a.lstrip("-").partition("=")
            if not eq and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                val, i = argv[i + 1], i + 1
            opts[key] = val if (eq or val) else True
        else:
            pos.append(a)
        i += 1
    return opts, pos


def parse_kubeadm_config(text):
    """The few fields of a kubeadm v1beta3 config the stand-in uses: scalars by key name, lists by the
    key above them. Enough for the plan's config; not a YAML parser."""
    scalars, lists, current = {}, {}, None
    for line in text.splitlines():
        s = line.split("#", 1)[0].rstrip()
        if not s.strip() or s.strip() == "---":
            continue
        item = re.match(r"\s*-\s+(.*)", s)
        if item and current:
            lists.setdefault(current, []).append(item.group(1).strip().strip("\"'"))
            continue
        kv = re.match(r"\s*([A-Za-z]+):\s*(.*)", s)
        if kv:
            current = kv.group(1)
            if kv.group(2):
                scalars[current] = kv.group(2).strip().strip("\"'")
    return scalars, lists


def manifest_objects(text):
    """(kind, namespace, name, document) of each object of a multi-document manifest: `kind:` at
    the top level, `name:` / `namespace:` under `metadata:`. Enough for the plan's manifests; not a
    YAML parser."""
    objects = []
    for doc in re.split(r"^---[^\n]*$", text, flags=re.M):
        kind = re.search(r"^kind:\s*(\S+)", doc, re.M)
        meta = re.search(r"^metadata:\s*\n((?:[ \t]+.*\n?|\s*\n)*)", doc, re.M)
        if not kind:
            continue
        fields = dict(re.findall(r"^  (name|namespace):\s*(\S+)", meta.group(1), re.M)) if meta else {}
        if "name" not in fields:
            raise ValueError("a %s without metadata.name" % kind.group(1))
        objects.append((kind.group(1), fields.get("namespace", ""), fields["name"].strip("\"'"), doc.strip() + "\n"))
    return objects


def console_port(cluster_configuration):
    """The console's port in a ks-installer ClusterConfiguration (spec.common.core.console.port, or
    3.0's spec.console.port): the first `port:` indented below a `console:` line; 30880 if none."""
    console = None
    for line in cluster_configuration.splitlines():
        indent = len(line) - len(line.lstrip())
        if line.strip() == "console:":
            console = indent
        elif console is not None and line.strip() and indent <= console:
            console = None
        elif console is not None and line.strip().startswith("port:"):
            m = re.match(r"port:\s*(\d+)\s*$", line.strip())
            return int(m.group(1)) if m else 30880
    return 30880


def object_key(kind, namespace, name):
    return "objects/%s/%s/%s" % (kind, namespace or "-", name)


# --- certificates -------------------------------------------------------------------------------

def make_cert(name, cn, org=None, sans=(), ca=PKI + "/ca"):
    """An EC key and a certificate signed by the CA `ca` (.crt/.key), unless both exist already."""
    crt, key = name + ".crt", name + ".key"
    if os.path.exists(crt) and os.path.exists(key):
        return
    os.makedirs(os.path.dirname(name), exist_ok=True)
    sh("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
    os.chmod(key, 0o600)
    subj = "/CN=" + cn + ("/O=" + org if org else "")
    with tempfile.NamedTemporaryFile("w", suffix=".ext") as ext:
        ext.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n")
        ext.write("extendedKeyUsage=serverAuth,clientAuth\n")
        if sans:
            ext.write("subjectAltName=" + ",".join(
                ("IP:" if re.fullmatch(r"[\d.]+", s) else "DNS:") + s for s in sans) + "\n")
        ext.flush()
        csr = sh("openssl", "req", "-new", "-key", key, "-subj", subj)
        sh("openssl", "x509", "-req", "-CA", ca + ".crt", "-CAkey", ca + ".key", "-CAcreateserial",
           "-days", "365", "-extfile", ext.name, "-out", crt, data=csr)


def make_ca(ca=PKI + "/ca", cn="kubernetes"):
    if os.path.exists(ca + ".crt"):
        return
    os.makedirs(os.path.dirname(ca), exist_ok=True)
    sh("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", ca + ".key")
    os.chmod(ca + ".key", 0o600)
    sh("openssl", "req", "-x509", "-new", "-key", ca + ".key", "-days", "3650",
       "-subj", "/CN=" + cn, "-out", ca + ".crt")


def ca_hash(ca_pem):
    """kubeadm's --discovery-token-ca-cert-hash: sha256 of the CA's DER SubjectPublicKeyInfo."""
    pub = sh("openssl", "x509", "-noout", "-pubkey", data=ca_pem)
    der = sh("openssl", "pkey", "-pubin", "-outform", "DER", data=pub)
    return "sha256:" + hashlib.sha256(der).hexdigest()


# --- etcd, where the cluster state lives --------------------------------------------------------

# The endpoint that answered last is asked first, as the real apiserver's etcd client keeps using
# a member that works: a member cut off from the network costs a timeout once, not every call.
LAST_GOOD = []


def etcd_call(etcd, op, body):
    ctx = ssl.create_default_context(cafile=etcd["caFile"])
    ctx.load_cert_chain(etcd["certFile"], etcd["keyFile"])
    last = None
    endpoints = sorted(etcd["endpoints"], key=lambda ep: ep not in LAST_GOOD)
    for ep in endpoints:
        req = urllib.request.Request(ep.rstrip("/") + op, data=json.dumps(body).encode(),
                                     method="POST" if body is not None else "GET")
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=1) as r:
                answer = json.load(r)
            LAST_GOOD[:] = [ep]
            return answer
        except OSError as e:
            last = e
    raise OSError("no etcd endpoint answered: %s" % last)


def etcd_put(etcd, key, value):
    etcd_call(etcd, "/v3/kv/put", {"key": b64(PREFIX + key), "value": b64(json.dumps(value))})


def etcd_get(etcd, prefix):
    """{key: value} for the keys under PREFIX + prefix."""
    start = (PREFIX + prefix).encode()
    end = start[:-1] + bytes([start[-1] + 1])
    out = etcd_call(etcd, "/v3/kv/range", {"key": b64(start), "range_end": b64(end)})
    return {base64.b64decode(kv["key"]).decode()[len(PREFIX):]:
            json.loads(base64.b64decode(kv["value"])) for kv in out.get("kvs", [])}


def etcd_healthy(etcd):
    try:
        return etcd_call(etcd, "/health", None).get("health") == "true"
    except OSError:
        return False


# --- stacked etcd: what kubeadm's local etcd phase does, with the real etcd -----------------------

def local_etcd():
    """The apiserver's etcd with stacked etcd: this master's own member, as kubeadm configures it."""
    return {"endpoints": ["https://127.0.0.1:2379"], "caFile": ETCD_PKI + "/ca.crt",
            "certFile": PKI + "/apiserver-etcd-client.crt", "keyFile": PKI + "/apiserver-etcd-client.key"}


def etcd_member_certs(ip, name):
    """kubeadm's certs for a local etcd member, signed by the etcd CA (ETCD_PKI/ca.{crt,key})."""
    ca = ETCD_PKI + "/ca"
    sans = [name, "localhost", ip, "127.0.0.1"]
    make_cert(ETCD_PKI + "/server", name, None, sans, ca)
    make_cert(ETCD_PKI + "/peer", name, None, sans, ca)
    make_cert(ETCD_PKI + "/healthcheck-client", "kube-etcd-healthcheck-client", None, (), ca)
    make_cert(PKI + "/apiserver-etcd-client", "kube-apiserver-etcd-client", None, (), ca)


def etcdctl(endpoints, *args):
    """The real etcdctl as this master's etcd healthcheck client: (ok, stdout or the error)."""
    p = subprocess.run(
        ["etcdctl", "--endpoints", ",".join(endpoints), "--cacert", ETCD_PKI + "/ca.crt",
         "--cert", ETCD_PKI + "/healthcheck-client.crt", "--key", ETCD_PKI + "/healthcheck-client.key",
         "--dial-timeout", "2s", "--command-timeout", "5s"] + list(args),
        env=dict(os.environ, ETCDCTL_API="3"), capture_output=True, text=True)
    return p.returncode == 0, (p.stdout if p.returncode == 0 else (p.stderr or p.stdout).strip())


def etcd_member_add(endpoints, name, ip):
    """Add this master to the etcd cluster (once: a member with its peer URL is taken as added by an
    earlier attempt) and give the --initial-cluster its member starts with. Retried with a delay,
    as kubeadm does: etcd refuses a new member while an earlier new one has not started (quorum)."""
    peer = "https://%s:2380" % ip
    last = ""
    for _ in range(90):
        ok, out = etcdctl(endpoints, "member", "list", "-w", "json")
        if ok:
            members = json.loads(out).get("members", [])
            if any(peer in m.get("peerURLs", []) for m in members):
                print("[etcd] this member was added before: starting it", flush=True)
                return ",".join("%s=%s" % (name if peer in m["peerURLs"] else m.get("name", ""), u)
                                for m in members for u in m.get("peerURLs", []))
            ok, out = etcdctl(endpoints, "member", "add", name, "--peer-urls", peer)
            if ok:
                print("[etcd] added member %s (%s) to the etcd cluster" % (name, peer), flush=True)
                found = re.search(r'^ETCD_INITIAL_CLUSTER="?([^"\n]*)"?$', out, re.M)
                if not found:
                    die("[etcd] etcdctl member add printed no ETCD_INITIAL_CLUSTER: %s" % out)
                return found.group(1)
        last = out
        print("[etcd] cannot add this member yet (retrying): %s" % (out.splitlines() or [""])[-1], flush=True)
        time.sleep(1)
    die("[etcd] could not add member %s: %s" % (name, last))


def start_etcd(name, ip, initial_cluster, state):
    """This master's etcd member: the real etcd, TLS for clients and peers, client URLs on the node
    IP and on 127.0.0.1 as kubeadm's static pod has them. A systemd unit where systemd runs."""
    etcd_bin = shutil.which("etcd")
    if not etcd_bin:
        die("[etcd] no etcd on PATH: the stacked etcd needs the etcd binary")
    os.makedirs(ETCD_DATA, exist_ok=True)
    os.chmod(ETCD_DATA, 0o700)
    args = [etcd_bin, "--name", name, "--data-dir", ETCD_DATA,
            "--listen-client-urls", "https://127.0.0.1:2379,https://%s:2379" % ip,
            "--advertise-client-urls", "https://%s:2379" % ip,
            "--listen-peer-urls", "https://%s:2380" % ip, "--initial-advertise-peer-urls", "https://%s:2380" % ip,
            "--initial-cluster", initial_cluster, "--initial-cluster-state", state,
            "--client-cert-auth", "--trusted-ca-file", ETCD_PKI + "/ca.crt",
            "--cert-file", ETCD_PKI + "/server.crt", "--key-file", ETCD_PKI + "/server.key",
            "--peer-client-cert-auth", "--peer-trusted-ca-file", ETCD_PKI + "/ca.crt",
            "--peer-cert-file", ETCD_PKI + "/peer.crt", "--peer-key-file", ETCD_PKI + "/peer.key"]
    print("[etcd] starting member %s (%s cluster %s)" % (name, state, initial_cluster), flush=True)
    if os.path.isdir("/run/systemd/system"):
        write("/etc/systemd/system/" + ETCD_UNIT,
              "[Unit]\nDescription=kswizard lab STAND-IN for kubeadm's etcd static pod (runs the real etcd)\n"
              "After=network-online.target\n\n[Service]\nExecStart=%s\nRestart=always\nRestartSec=2\n"
              "LimitNOFILE=65536\n\n[Install]\nWantedBy=multi-user.target\n" % " ".join(args))
        sh("systemctl", "daemon-reload")
        sh("systemctl", "enable", "--now", ETCD_UNIT)
    else:
        detach("etcd", args)
    etcd = local_etcd()
    etcd["certFile"], etcd["keyFile"] = ETCD_PKI + "/healthcheck-client.crt", ETCD_PKI + "/healthcheck-client.key"
    for _ in range(150):
        if etcd_healthy(etcd):
            return print("[etcd] member %s is healthy" % name, flush=True)
        time.sleep(0.2)
    die("[etcd] member %s did not become healthy; see journalctl -u %s" % (name, ETCD_UNIT))


# --- the apiserver stand-in ---------------------------------------------------------------------

def apiserver(argv):
    """As the kubelet runs it from the manifest: kube-apiserver's own flags (the few it uses)."""
    opts, _ = flags(argv)
    etcd = etcd_of(opts)
    bind, port = opts["advertise-address"], int(opts.get("secure-port", 6443))

    class Handler(BaseHTTPRequestHandler):
        def reply(self, code, body, ctype="text/plain"):
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype if isinstance(body, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def body(self):
            return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")

        def is_admin(self):
            return bool(self.connection.getpeercert())

        def do_GET(self):
            if self.path in ("/readyz", "/healthz", "/livez"):
                # Like the real apiserver, not ready while its etcd is unreachable.
                if etcd_healthy(etcd):
                    return self.reply(200, "ok")
                return self.reply(500, "[-]etcd failed: reason withheld\nreadyz check failed")
            if self.path == "/standin/cluster-info":
                return self.reply(200, read(PKI + "/ca.crt").decode())
            if self.path == "/api/v1/nodes" and self.is_admin():
                cni = bool(etcd_get(etcd, object_key(*CNI_OBJECT)))
                nodes = list(etcd_get(etcd, "nodes/").values())
                for n in nodes:
                    n["networkReady"] = cni
                return self.reply(200, {"kind": "NodeList", "items": nodes})
            if self.path == "/standin/objects" and self.is_admin():
                return self.reply(200, {"items": list(etcd_get(etcd, "objects/").values())})
            return self.reply(403 if self.path.startswith("/api") else 404, "forbidden or not found")

        def do_POST(self):
            req = self.body()
            if self.path == "/standin/join":
                return self.join(req)
            if self.path == "/standin/heartbeat":
                node = etcd_get(etcd, "nodes/" + req.get("name", "")).get("nodes/" + req.get("name", ""))
                if not node or node.get("secret") != req.get("secret"):
                    return self.reply(401, "unknown node or wrong credential")
                node["heartbeat"] = time.time()
                etcd_put(etcd, "nodes/" + node["name"], node)
                # What this node's kubelet runs: the CNI, and the console's NodePort once KubeSphere is in.
                config = etcd_get(etcd, object_key(*KS_CONFIG)).get(object_key(*KS_CONFIG))
                installer = etcd_get(etcd, object_key(*KS_INSTALLER))
                return self.reply(200, {"cni": bool(etcd_get(etcd, object_key(*CNI_OBJECT))),
                                        "console": console_port(config["manifest"]) if config and installer else None})
            if self.path == "/standin/apply" and self.is_admin():
                return self.apply(req)
            if self.path == "/standin/node" and self.is_admin():
                return self.node_op(req)
            return self.reply(404, "not found")

        def node_op(self, req):
            """kubectl cordon / uncordon (spec.unschedulable) and delete node, on the stored node."""
            key = "nodes/" + req.get("name", "")
            node = etcd_get(etcd, key).get(key)
            if not node:
                return self.reply(404, 'Error from server (NotFound): nodes "%s" not found' % req.get("name"))
            if req.get("op") == "delete":
                etcd_call(etcd, "/v3/kv/deleterange", {"key": b64(PREFIX + key)})
            elif req.get("op") in ("cordon", "uncordon"):
                node["unschedulable"] = req["op"] == "cordon"
                etcd_put(etcd, key, node)
            else:
                return self.reply(400, "unknown node operation")
            return self.reply(200, {"name": node["name"]})

        def apply(self, req):
            try:
                objects = manifest_objects(req.get("manifest", ""))
            except ValueError as e:
                return self.reply(400, "error: %s" % e)
            if not objects:
                return self.reply(400, "error: no objects passed to apply")
            said = []
            for kind, ns, name, doc in objects:
                key = object_key(kind, ns, name)
                old = etcd_get(etcd, key).get(key)
                verb = "created" if not old else ("unchanged" if old["manifest"] == doc else "configured")
                if verb != "unchanged":
                    etcd_put(etcd, key, {"kind": kind, "namespace": ns, "name": name, "manifest": doc,
                                         "applied": time.time()})
                said.append("%s/%s %s" % (kind.lower(), name, verb))
            return self.reply(200, {"said": said})

        def join(self, req):
            token_id, _, token_secret = req.get("token", "").partition(".")
            token = etcd_get(etcd, "tokens/" + token_id).get("tokens/" + token_id)
            if not token or token["secret"] != token_secret:
                return self.reply(401, "invalid bootstrap token")
            cluster = etcd_get(etcd, "cluster").get("cluster", {})
            answer = {"cluster": cluster}
            if req.get("controlPlane"):
                if req.get("certificateKey") != cluster.get("certificateKey"):
                    return self.reply(403, "wrong --certificate-key")
                answer["caKey"] = read(PKI + "/ca.key").decode()
                if cluster.get("etcdTopology") == "stacked":
                    # As upload-certs hands on the etcd CA; and where the members answer.
                    answer["etcdCa"] = {"crt": read(ETCD_PKI + "/ca.crt").decode(),
                                        "key": read(ETCD_PKI + "/ca.key").decode()}
                    members = etcd_call(etcd, "/v3/cluster/member/list", {}).get("members", [])
                    answer["etcdEndpoints"] = [u for m in members for u in m.get("clientURLs", [])]
            secret = secrets.token_hex(16)
            etcd_put(etcd, "nodes/" + req["name"], {
                "name": req["name"], "ip": req["ip"], "secret": secret, "joined": time.time(),
                "roles": ["control-plane"] if req.get("controlPlane") else []})
            answer["nodeSecret"] = secret
            return self.reply(200, answer)

        def log_message(self, fmt, *args):
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(opts.get("tls-cert-file", PKI + "/apiserver.crt"), opts.get("tls-private-key-file", PKI + "/apiserver.key"))
    ctx.load_verify_locations(opts.get("client-ca-file", PKI + "/ca.crt"))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    class TLSServer(ThreadingHTTPServer):
        """TLS per connection, its handshake in the connection's own thread: a client that
        connects and never finishes a handshake (haproxy's checks around a reload) holds up only
        itself, never the accept loop, as with the real apiserver."""
        daemon_threads = True

        def get_request(self):
            sock, addr = self.socket.accept()
            sock.settimeout(10)
            return ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

        def finish_request(self, request, client_address):
            try:
                request.do_handshake()
            except (OSError, ssl.SSLError):
                return
            super().finish_request(request, client_address)

    # The stand-in binds its advertise address only (the real one binds every address).
    server = TLSServer((bind, port), Handler)
    print("stand-in apiserver listening on https://%s:%d, etcd %s" % (bind, port, ",".join(etcd["endpoints"])), flush=True)
    server.serve_forever()


def etcd_of(opts):
    """The apiserver's etcd from its --etcd-* flags."""
    return {"endpoints": [e for e in opts.get("etcd-servers", "").split(",") if e],
            "caFile": opts.get("etcd-cafile"), "certFile": opts.get("etcd-certfile"),
            "keyFile": opts.get("etcd-keyfile")}


def apiserver_manifest(ip, port, etcd):
    """kubeadm's static pod manifest for the apiserver (the fields the stand-in kubelet reads)."""
    command = ["kube-apiserver", "--advertise-address=%s" % ip, "--secure-port=%d" % port,
               "--etcd-servers=%s" % ",".join(etcd["endpoints"]), "--etcd-cafile=%s" % etcd["caFile"],
               "--etcd-certfile=%s" % etcd["certFile"], "--etcd-keyfile=%s" % etcd["keyFile"],
               "--client-ca-file=%s/ca.crt" % PKI, "--tls-cert-file=%s/apiserver.crt" % PKI,
               "--tls-private-key-file=%s/apiserver.key" % PKI]
    return ("# kswizard lab STAND-IN: the stand-in kubelet runs the stand-in apiserver from this\n"
            "apiVersion: v1\nkind: Pod\nmetadata:\n  annotations:\n"
            "    kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint: %s:%d\n"
            "  labels:\n    component: kube-apiserver\n    tier: control-plane\n"
            "  name: kube-apiserver\n  namespace: kube-system\nspec:\n  containers:\n  - command:\n%s"
            "    image: registry.k8s.io/kube-apiserver:%s\n    name: kube-apiserver\n  hostNetwork: true\n"
            % (ip, port, "".join("    - %s\n" % c for c in command), CONTRACT))


def manifest_command(text):
    """The container's command of a static pod manifest: the `- ` items under `command:`."""
    command, inside = [], False
    for line in text.splitlines():
        if re.match(r"^\s*-?\s*command:\s*$", line):
            inside = True
        elif inside and re.match(r"^\s*- ", line) and not re.match(r"^\s*- \w+:", line):
            command.append(line.split("- ", 1)[1].strip().strip("\"'"))
        elif inside:
            inside = False
    return command


def running(name):
    try:
        pid = int(read("%s/%s.pid" % (RUN, name)))
        return name in read("/proc/%d/cmdline" % pid).decode(errors="replace")
    except (OSError, ValueError):
        return False


def standin(name, *args):
    """The command line of this stand-in's `name` (apiserver, kubelet)."""
    return [sys.executable, os.path.abspath(__file__), name] + list(args)


def detach(name, argv):
    """Start `argv` in its own session, logging to RUN/name.log, pid in RUN/name.pid."""
    if running(name):
        return
    os.makedirs(RUN, exist_ok=True)
    log = open("%s/%s.log" % (RUN, name), "ab")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    write("%s/%s.pid" % (RUN, name), str(p.pid))


def write_apiserver_manifest(ip, port, etcd):
    write(APISERVER_MANIFEST, apiserver_manifest(ip, port, etcd), 0o600)
    print("[control-plane] Creating static Pod manifest for \"kube-apiserver\" (%s)" % APISERVER_MANIFEST)


def wait_apiserver(ip, port):
    """kubeadm's wait-control-plane: the kubelet has started the apiserver from its manifest."""
    print("[wait-control-plane] Waiting for the kubelet to boot up the control plane as static Pods "
          "from directory %s" % MANIFESTS, flush=True)
    ctx = ssl.create_default_context(cafile=PKI + "/ca.crt")
    for _ in range(200):
        try:
            with urllib.request.urlopen("https://%s:%d/readyz" % (ip, port), context=ctx, timeout=2) as r:
                if r.read() == b"ok":
                    print("[apiclient] the stand-in apiserver is ready on https://%s:%d" % (ip, port))
                    return
        except OSError:
            pass
        time.sleep(0.2)
    die("[wait-control-plane] the stand-in apiserver did not become ready; see journalctl -u %s "
        "and journalctl -u kubelet" % APISERVER_UNIT)


def kubeconfig(server, user, cred):
    return ("apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n"
            "    certificate-authority-data: %s\n    server: https://%s\n  name: kubernetes\n"
            "contexts:\n- context:\n    cluster: kubernetes\n    user: %s\n  name: %s@kubernetes\n"
            "current-context: %s@kubernetes\nusers:\n- name: %s\n  user:\n%s"
            % (b64(read(PKI + "/ca.crt")), server, user, user, user, user, cred))


def write_admin_conf(endpoint):
    make_cert(PKI + "/admin", "kubernetes-admin", "system:masters")
    cred = "    client-certificate-data: %s\n    client-key-data: %s\n" % (
        b64(read(PKI + "/admin.crt")), b64(read(PKI + "/admin.key")))
    write(K8S + "/admin.conf", kubeconfig(endpoint, "kubernetes-admin", cred), 0o600)


def start_kubelet(endpoint, name, secret, apiserver=None):
    """kubeadm's kubelet-start phase: the kubelet's kubeconfig, config.yaml and kubeadm-flags.env,
    then `systemctl restart kubelet` (kubelet.service runs the kubelet, as on a real host) and a wait
    for the kubelet's /healthz on 127.0.0.1:10248, as kubeadm's kubelet-check does; on a control
    plane node (`apiserver` = (ip, port)) then the wait for the apiserver the kubelet starts from
    its static pod manifest; last the node's registration through `endpoint`."""
    cred = "    token: %s\n" % secret
    write(K8S + "/kubelet.conf", kubeconfig(endpoint, "system:node:" + name, cred), 0o600)
    write(KUBELET_CONFIG, "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
          "# kswizard lab STAND-IN: the fields kubeadm sets that the stand-in kubelet reads\n"
          "cgroupDriver: systemd\nstaticPodPath: %s\n" % MANIFESTS)
    # kubeadm names the node to the kubelet only when it is not the host name.
    override = "" if name == os.uname().nodename else " --hostname-override=" + name
    write(KUBEADM_FLAGS, 'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/'
          'containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.9%s"\n' % override)
    if not os.path.isdir("/run/systemd/system"):
        die("[kubelet-start] this host does not run systemd: kubeadm starts the kubelet as kubelet.service")
    print("[kubelet-start] Starting the kubelet (systemctl restart kubelet)", flush=True)
    subprocess.run(["systemctl", "restart", "kubelet"], check=True)
    for attempt in range(80):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % KUBELET_HEALTHZ_PORT, timeout=1) as r:
                if r.read() == b"ok":
                    break
        except OSError:
            pass
        if attempt == 79:
            die("[kubelet-check] the kubelet is not healthy: see `journalctl -u kubelet`")
        time.sleep(0.5)
    print("[kubelet-check] The kubelet (stand-in) is healthy", flush=True)
    if apiserver:
        wait_apiserver(*apiserver)
    # As kubeadm waits for the kubelet's TLS bootstrap: the node is registered when this returns.
    # Through the LB, which may not have marked this node's apiserver up yet: retried.
    for attempt in range(80):
        try:
            heartbeat(K8S + "/kubelet.conf", name)
            break
        except OSError as e:
            if attempt == 79:
                die("[kubelet-start] the kubelet could not reach %s: %s" % (endpoint, e))
            time.sleep(0.5)
    print("[kubelet-start] the kubelet posts heartbeats as %s through %s" % (name, endpoint))


def make_serving_cert(ip, endpoint, sans):
    host = endpoint.rsplit(":", 1)[0]
    make_cert(PKI + "/apiserver", "kube-apiserver", None,
              [ip, host, "kubernetes", "kubernetes.default", "kubernetes.default.svc"] + sans)


def new_token(etcd):
    token_id, secret = secrets.token_hex(3), secrets.token_hex(8)
    etcd_put(etcd, "tokens/" + token_id, {"secret": secret, "created": time.time()})
    return token_id + "." + secret


def local_state():
    """This master's etcd (its apiserver's, from the manifest) and the cluster's configuration."""
    if not os.path.exists(APISERVER_MANIFEST):
        die("this node runs no control plane (no %s): run kubeadm init or join --control-plane first"
            % APISERVER_MANIFEST)
    etcd = etcd_of(flags(manifest_command(read(APISERVER_MANIFEST).decode())[1:])[0])
    return etcd, etcd_get(etcd, "cluster")["cluster"]


def join_command(etcd, cluster):
    return "kubeadm join %s --token %s --discovery-token-ca-cert-hash %s" % (
        cluster["endpoint"], new_token(etcd), ca_hash(read(PKI + "/ca.crt")))


# --- kubeadm ------------------------------------------------------------------------------------

def kubeadm(argv):
    opts, pos = flags(argv)
    if "version" in pos or opts.get("version"):
        return print("kubeadm version: kswizard lab STAND-IN, not the real kubeadm (contract of %s)" % CONTRACT)
    if pos[:1] == ["token"] and pos[1:2] == ["create"]:
        etcd, cluster = local_state()
        return print(join_command(etcd, cluster) if opts.get("print-join-command") else new_token(etcd))
    if pos[:4] == ["init", "phase", "upload-config", "kubeadm"]:
        return upload_config(opts)
    if pos[:3] == ["init", "phase", "upload-certs"]:
        _, cluster = local_state()
        return print("[upload-certs] Using certificate key:\n" + cluster["certificateKey"])
    if pos[:1] == ["init"]:
        return kubeadm_init(opts)
    if pos[:1] == ["join"] and len(pos) > 1:
        return kubeadm_join(pos[1], opts)
    if pos[:1] == ["reset"]:
        return kubeadm_reset(opts)
    die("kubeadm stand-in: unsupported command %s (supported: init, join, reset, token create, version)" % argv)


def kubeadm_reset(opts):
    """As `kubeadm reset -f`: a stacked member leaves the etcd cluster (if still in it) and its data
    goes; the control plane stops (the stand-in apiserver), the kubelet stops; kubeadm's files go.
    Like kubeadm, it leaves CNI config, iptables and the kubelet's unit alone."""
    if not opts.get("f") and not opts.get("force"):
        die("[reset] Are you sure you want to proceed? [y/N]: no terminal to ask: pass -f (kubeadm reset -f)")
    if os.path.exists("/etc/systemd/system/" + ETCD_UNIT):
        ok, out = etcdctl(["https://127.0.0.1:2379"], "member", "list", "-w", "json")
        mine = set(local_peer_urls())
        members = json.loads(out).get("members", []) if ok else []
        for m in [m for m in members if mine & set(m.get("peerURLs") or [])]:
            ok, said = etcdctl(["https://127.0.0.1:2379"], "member", "remove", "%x" % m["ID"])
            print("[reset] Removing this member from the etcd cluster: %s" % (said.strip() if ok else "failed: " + said),
                  flush=True)
        subprocess.run(["systemctl", "disable", "--now", ETCD_UNIT], capture_output=True)
        os.unlink("/etc/systemd/system/" + ETCD_UNIT)
        subprocess.run(["systemctl", "daemon-reload"], capture_output=True)
        print("[reset] Deleting contents of the stacked etcd member's data directory: %s" % ETCD_DATA)
        shutil.rmtree(ETCD_DATA, ignore_errors=True)
    print("[reset] Stopping the kubelet service", flush=True)
    subprocess.run(["systemctl", "stop", "kubelet"], capture_output=True)
    # The static pods' containers, as kubeadm removes them through the CRI: the stand-in's unit.
    if running("apiserver"):
        stop_apiserver()
        print("[reset] Stopped the control plane's static pods (stand-in apiserver)")
    dirs = [K8S + "/manifests", "/var/lib/kubelet", PKI]
    print("[reset] Deleting contents of directories: %s" % dirs)
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    files = [K8S + "/" + f for f in ("admin.conf", "kubelet.conf", "bootstrap-kubelet.conf",
                                      "controller-manager.conf", "scheduler.conf")]
    print("[reset] Deleting files: %s" % files)
    for f in files:
        if os.path.exists(f):
            os.unlink(f)
    print("\nThe reset process does not clean CNI configuration, iptables or IPVS tables, or your "
          "$HOME/.kube/config file (kswizard lab STAND-IN of kubeadm reset).")


def local_peer_urls():
    """This node's peer URLs, as the stacked member advertised them (its addresses on :2380)."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return ["https://%s:2380" % ip for ip in out]


def upload_config(opts):
    """The config's external etcd endpoints become the cluster's: what `kubeadm join` hands on."""
    if "config" not in opts:
        die("kubeadm init phase upload-config kubeadm: the stand-in needs --config")
    etcd, cluster = local_state()
    _, lists = parse_kubeadm_config(read(opts["config"]).decode())
    if cluster.get("etcdTopology") == "external":
        if not lists.get("endpoints"):
            die("[upload-config] the config names no etcd.external.endpoints")
        cluster["etcd"]["endpoints"] = lists["endpoints"]
    etcd_put(etcd, "cluster", cluster)
    print('[upload-config] Storing the configuration used in ConfigMap "kubeadm-config" in the "kube-system" Namespace')


def preflight_cri():
    """kubeadm's preflight check of the container runtime (through crictl's endpoint)."""
    runtime_ready("unix://" + CONTAINERD_SOCK, "[preflight] [ERROR CRI]: container runtime is not running: ")


def kubeadm_init(opts):
    preflight_cri()
    scalars, lists = {}, {}
    if "config" in opts:
        scalars, lists = parse_kubeadm_config(read(opts["config"]).decode())
    ip = opts.get("apiserver-advertise-address") or scalars.get("advertiseAddress")
    port = int(opts.get("apiserver-bind-port") or scalars.get("bindPort") or 6443)
    endpoint = opts.get("control-plane-endpoint") or scalars.get("controlPlaneEndpoint") or "%s:%d" % (ip, port)
    name = opts.get("node-name") or scalars.get("name") or os.uname().nodename
    if not ip:
        die("kubeadm init: no advertise address (--apiserver-advertise-address or localAPIEndpoint)")
    if os.path.exists(K8S + "/admin.conf"):
        die("[preflight] [ERROR FileAvailable--etc-kubernetes-admin.conf]: /etc/kubernetes/admin.conf already exists")
    etcd = {"endpoints": lists.get("endpoints", []), "caFile": scalars.get("caFile"),
            "certFile": scalars.get("certFile"), "keyFile": scalars.get("keyFile")}
    # As kubeadm: without etcd.external, a local etcd member on this node ("stacked").
    stacked = not etcd["endpoints"] and not any(etcd.values())
    if stacked:
        print("[etcd] local etcd (stacked): the etcd CA and certificates in %s" % ETCD_PKI)
        make_ca(ETCD_PKI + "/ca", "etcd-ca")
        etcd_member_certs(ip, name)
        start_etcd(name, ip, "%s=https://%s:2380" % (name, ip), "new")
        etcd = local_etcd()
    elif not etcd["endpoints"] or not all(etcd.values()):
        die("kubeadm init stand-in: etcd.external needs endpoints, caFile, certFile and keyFile in --config")
    else:
        print("[preflight] checking the external etcd cluster at %s" % ",".join(etcd["endpoints"]))
    if not etcd_healthy(etcd):
        die("[preflight] [ERROR ExternalEtcdVersion]: no etcd endpoint is healthy")
    print("[certs] Generating the CA and the apiserver certificate (SANs: %s)" % ",".join(lists.get("certSANs", [])))
    make_ca()
    make_serving_cert(ip, endpoint, lists.get("certSANs", []))
    cluster = {"endpoint": endpoint, "etcd": etcd, "certSANs": lists.get("certSANs", []),
               "certificateKey": secrets.token_hex(32), "etcdTopology": "stacked" if stacked else "external"}
    etcd_put(etcd, "cluster", cluster)
    write_apiserver_manifest(ip, port, etcd)
    write_admin_conf(endpoint)
    secret = secrets.token_hex(16)
    etcd_put(etcd, "nodes/" + name, {"name": name, "ip": ip, "secret": secret, "joined": time.time(),
                                     "roles": ["control-plane"]})
    start_kubelet(endpoint, name, secret, (ip, port))
    join = join_command(etcd, cluster)
    # As kubeadm: --skip-token-print / --skip-certificate-key-print keep the secrets off the console.
    withheld = "<value withheld>"
    if opts.get("skip-token-print"):
        words = join.split()
        join = " ".join(withheld if i > 0 and words[i - 1] == "--token" else w for i, w in enumerate(words))
    key = withheld if opts.get("skip-certificate-key-print") else cluster["certificateKey"]
    print("\nYour Kubernetes control-plane (kswizard lab STAND-IN) has initialized successfully!\n")
    print("You can now join any number of control-plane nodes by running:\n\n  %s \\\n"
          "\t--control-plane --certificate-key %s\n" % (join, key))
    print("Then you can join any number of worker nodes by running:\n\n  %s\n" % join)


def kubeadm_join(endpoint, opts):
    preflight_cri()
    name = opts.get("node-name") or os.uname().nodename
    if os.path.exists(K8S + "/kubelet.conf"):
        die("[preflight] [ERROR FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf already exists")
    for need in ("token", "discovery-token-ca-cert-hash"):
        if need not in opts:
            die("kubeadm join: --%s is required" % need)
    # Discovery: fetch the CA without trusting it, then trust it only if its hash is the one given.
    # Retried like kubeadm's discovery: the LB may not have marked an apiserver up yet.
    insecure = ssl._create_unverified_context()
    for attempt in range(60):
        try:
            with urllib.request.urlopen("https://%s/standin/cluster-info" % endpoint, context=insecure, timeout=5) as r:
                ca_pem = r.read()
            break
        except OSError as e:
            if attempt == 59:
                die("[discovery] %s did not answer: %s" % (endpoint, e))
            print("[discovery] waiting for %s: %s" % (endpoint, e), flush=True)
            time.sleep(1)
    if ca_hash(ca_pem) != opts["discovery-token-ca-cert-hash"]:
        die("[discovery] the cluster CA's hash is not %s: refusing it" % opts["discovery-token-ca-cert-hash"])
    print("[discovery] cluster CA verified against the pinned public key")
    cp = bool(opts.get("control-plane"))
    req = {"token": opts["token"], "name": name, "ip": opts.get("apiserver-advertise-address", ""),
           "controlPlane": cp, "certificateKey": opts.get("certificate-key")}
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    post = urllib.request.Request("https://%s/standin/join" % endpoint, data=json.dumps(req).encode(), method="POST")
    # Retried when the apiserver cannot answer (its etcd briefly without quorum while another
    # master's new member starts), never when it refuses.
    for attempt in range(30):
        try:
            with urllib.request.urlopen(post, context=ctx, timeout=10) as r:
                answer = json.load(r)
            break
        except urllib.error.HTTPError as e:
            die("[join] the apiserver refused: %s" % e.read().decode(errors="replace"))
        except OSError as e:
            if attempt == 29:
                die("[join] %s did not answer the join: %s" % (endpoint, e))
            print("[join] waiting for %s: %s" % (endpoint, e), flush=True)
            time.sleep(1)
    write(PKI + "/ca.crt", ca_pem)
    if cp:
        if not req["ip"]:
            die("kubeadm join --control-plane: --apiserver-advertise-address is required by the stand-in")
        cluster = answer["cluster"]
        write(PKI + "/ca.key", answer["caKey"], 0o600)
        etcd = cluster["etcd"]
        if cluster.get("etcdTopology") == "stacked":
            write(ETCD_PKI + "/ca.crt", answer["etcdCa"]["crt"])
            write(ETCD_PKI + "/ca.key", answer["etcdCa"]["key"], 0o600)
            etcd_member_certs(req["ip"], name)
            if os.path.isdir(ETCD_DATA + "/member"):
                print("[etcd] this member has data already: starting it as it is")
                initial = "%s=https://%s:2380" % (name, req["ip"])
            else:
                initial = etcd_member_add(answer["etcdEndpoints"], name, req["ip"])
            start_etcd(name, req["ip"], initial, "existing")
            etcd = local_etcd()
        make_serving_cert(req["ip"], cluster["endpoint"], cluster["certSANs"])
        port = int(opts.get("apiserver-bind-port", 6443))
        write_apiserver_manifest(req["ip"], port, etcd)
        write_admin_conf(cluster["endpoint"])
    start_kubelet(endpoint, name, answer["nodeSecret"], (req["ip"], port) if cp else None)
    print("\nThis node (%s) has joined the cluster%s (kswizard lab STAND-IN)." % (name, " as a control-plane node" if cp else ""))


# --- kubelet, kubectl, crictl, containerd -------------------------------------------------------

def kubeconfig_fields(path):
    text = read(path).decode()
    return {k: v for k, v in re.findall(r"^\s*([a-z-]+):\s*(\S+)\s*$", text, re.M)}


def kubelet(argv):
    """As kubelet.service runs it (kubeadm's drop-in: --kubeconfig, --config, and kubeadm-flags.env's
    arguments). Like the real kubelet it exits non-zero until kubeadm has written its config and while
    the container runtime does not answer, so systemd restarts it: it crash-loops before init/join."""
    opts, _ = flags(argv)
    if opts.get("version"):
        return print("Kubernetes %s (kswizard lab STAND-IN kubelet, not the real kubelet)" % VERSION)
    config = opts.get("config", KUBELET_CONFIG)
    if not os.path.exists(config):
        die('"command failed" err="failed to load kubelet config file, path: %s, error: open %s: '
            'no such file or directory" (kswizard lab STAND-IN kubelet: kubeadm init/join writes it)' % (config, config))
    path = opts.get("kubeconfig", K8S + "/kubelet.conf")
    if not os.path.exists(path):
        die('"command failed" err="invalid kubeconfig: stat %s: no such file or directory"' % path)
    runtime_ready(opts.get("container-runtime-endpoint", "unix://" + CONTAINERD_SOCK))
    name = opts.get("hostname-override", os.uname().nodename)
    serve_in_thread(("127.0.0.1", KUBELET_HEALTHZ_PORT), {"/healthz": lambda: "ok"})
    print("kubelet (kswizard lab STAND-IN) running as %s, healthz on 127.0.0.1:%d" % (name, KUBELET_HEALTHZ_PORT), flush=True)
    static = re.search(r"^staticPodPath:\s*(\S+)", read(config).decode(), re.M)
    threading.Thread(target=static_pods, args=(static.group(1) if static else MANIFESTS,), daemon=True).start()
    # As the real kubelet without --node-ip: the address the node's own name resolves to.
    node_ip = opts.get("node-ip") or socket.gethostbyname(os.uname().nodename)
    network, serving = None, None
    while True:
        try:
            state = heartbeat(path, name)
        except OSError as e:
            print("heartbeat failed: %s" % e, flush=True)
            state = {}
        if state and state.get("cni") != network:
            network = state.get("cni")
            print("network plugin %s" % ("ready: calico (stand-in)" if network else
                  "not ready: cni config uninitialized"), flush=True)
            if network:
                write("/etc/cni/net.d/10-calico.conflist", json.dumps(
                    {"name": "k8s-pod-network", "cniVersion": "0.3.1", "plugins": [{"type": "calico"}],
                     "note": "kswizard lab STAND-IN: no pod network runs in the lab"}))
        port = state.get("console")
        if port and serving is None:
            serving = serve_console(node_ip, port, name)
        time.sleep(HEARTBEAT_S)


def static_pods(manifest_dir):
    """The kubelet's static pods, as far as the stand-in has them: the apiserver's manifest run as
    APISERVER_UNIT, started again at once when the manifest changes (the old one stopped first),
    after POD_BACKOFF_S when it exited on its own, and stopped when the manifest goes (moving it
    out of the directory stops the apiserver, as with the real kubelet)."""
    path = os.path.join(manifest_dir, "kube-apiserver.yaml")
    started = RUN + "/apiserver.manifest-sha256"
    dead_since = None
    while True:
        try:
            text = read(path).decode()
        except OSError:
            text = None
        want = hashlib.sha256(text.encode()).hexdigest() if text is not None else None
        try:
            have = read(started).decode()
        except OSError:
            have = None
        alive = running("apiserver")
        if want is None and have is not None:
            print("static pod kube-apiserver: %s is gone, stopping it" % path, flush=True)
            stop_apiserver()
            os.unlink(started)
        elif want is not None and want != have:
            if alive:
                print("static pod kube-apiserver: %s changed, restarting it" % path, flush=True)
                stop_apiserver()
            run_apiserver(manifest_command(text)[1:])
            write(started, want)
            dead_since = None
        elif want is not None and not alive:
            dead_since = dead_since or time.time()
            if time.time() - dead_since >= POD_BACKOFF_S:
                print("static pod kube-apiserver exited: started again after %d s" % POD_BACKOFF_S, flush=True)
                run_apiserver(manifest_command(text)[1:])
                dead_since = None
        time.sleep(0.5)


def run_apiserver(args):
    os.makedirs(RUN, exist_ok=True)
    log = "%s/apiserver.log" % RUN
    subprocess.run(["systemd-run", "--unit", APISERVER_UNIT, "--collect", "--quiet",
                    "-p", "StandardOutput=append:" + log, "-p", "StandardError=append:" + log]
                   + standin("apiserver", *args), check=True)
    pid = subprocess.run(["systemctl", "show", "-p", "MainPID", "--value", APISERVER_UNIT],
                         capture_output=True, text=True).stdout.strip()
    write("%s/apiserver.pid" % RUN, pid)
    print("static pod kube-apiserver started (unit %s, pid %s)" % (APISERVER_UNIT, pid), flush=True)


def stop_apiserver():
    subprocess.run(["systemctl", "stop", APISERVER_UNIT], capture_output=True)


CONSOLE_PAGE = """<!DOCTYPE html>
<html><head><title>KubeSphere console (kswizard lab STAND-IN)</title></head>
<body><h1>KubeSphere console &mdash; kswizard lab STAND-IN</h1>
<p>Not the real KubeSphere console: the lab's stand-in for its NodePort, served by node %s.</p>
</body></html>
"""


def serve_console(ip, port, name):
    """The console's NodePort on this node: a small page, in a thread of the kubelet."""
    page = (CONSOLE_PAGE % name).encode()

    class Console(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, fmt, *args):
            pass

    try:
        server = ThreadingHTTPServer((ip, port), Console)
    except OSError as e:
        print("console NodePort %s:%d: %s" % (ip, port, e), flush=True)
        return None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("KubeSphere console (stand-in) served on http://%s:%d" % (ip, port), flush=True)
    return server


def heartbeat(kubeconfig_path, name):
    """Post a heartbeat; the answer says what this node runs (cni, console port or None)."""
    kc = kubeconfig_fields(kubeconfig_path)
    ctx = ssl.create_default_context(cadata=base64.b64decode(kc["certificate-authority-data"]).decode())
    body = json.dumps({"name": name, "secret": kc["token"]}).encode()
    req = urllib.request.Request(kc["server"] + "/standin/heartbeat", data=body, method="POST")
    with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
        return json.load(r)


def kubectl(argv):
    opts, pos = flags(argv)
    if "version" in pos or opts.get("version"):
        return print("Client Version: %s (kswizard lab STAND-IN kubectl, not the real kubectl)" % VERSION)
    if pos[:1] == ["apply"]:
        return kubectl_apply(opts)
    if pos[:1] in (["cordon"], ["uncordon"], ["drain"]) and len(pos) == 2:
        return kubectl_cordon(pos[0], pos[1], opts)
    if pos[:1] == ["delete"] and pos[1:2] in (["node"], ["nodes"]) and len(pos) == 3:
        return kubectl_delete_node(pos[2], opts)
    node_kind = pos[1:2] in (["node"], ["nodes"], ["no"])
    if pos[:1] == ["get"] and not node_kind and len(pos) > 1:
        return kubectl_get(pos[1], pos[2] if len(pos) > 2 else None, opts)
    if pos[:1] != ["get"] or not node_kind:
        die("kubectl stand-in: only `get nodes [NAME] [-o json]`, `get KIND [NAME] [-n NS] [-o yaml]`, "
            "`apply -f FILE`, `cordon|uncordon|drain NODE`, `delete node NODE` and `version` are supported")
    nodes = api(opts, "/api/v1/nodes")["items"]
    if len(pos) > 2:
        nodes = [n for n in nodes if n["name"] == pos[2]]
        if not nodes:
            die('Error from server (NotFound): nodes "%s" not found' % pos[2])
    now = time.time()
    for n in nodes:
        n.pop("secret", None)
        alive = now - n.get("heartbeat", 0) < 4 * HEARTBEAT_S
        n["status"] = "Ready" if alive and n.get("networkReady") else "NotReady"
        if n.get("unschedulable"):
            n["status"] += ",SchedulingDisabled"
    if "json" in argv:
        return print(json.dumps({"kind": "NodeList", "items": nodes}, indent=2))
    print("%-12s %-9s %-14s %-6s %s" % ("NAME", "STATUS", "ROLES", "AGE", "VERSION"))
    for n in sorted(nodes, key=lambda n: n["name"]):
        print("%-12s %-9s %-14s %-6s %s" % (n["name"], n["status"], ",".join(n["roles"]) or "<none>",
                                           "%dm" % ((now - n["joined"]) // 60), VERSION))


def kubectl_cordon(verb, name, opts):
    """cordon / uncordon mark the node (un)schedulable; drain cordons, then evicts its pods: the lab
    runs no pods, so nothing is evicted, as on a node with only DaemonSet pods (--ignore-daemonsets)."""
    api(opts, "/standin/node", {"name": name, "op": "uncordon" if verb == "uncordon" else "cordon"})
    print("node/%s %s" % (name, {"cordon": "cordoned", "uncordon": "uncordoned", "drain": "cordoned"}[verb]))
    if verb == "drain":
        print("evicting pods on node %s: none (kswizard lab STAND-IN: no pods run in the lab)" % name)
        print("node/%s drained" % name)


def kubectl_delete_node(name, opts):
    if opts.get("ignore-not-found") and not any(
            n["name"] == name for n in api(opts, "/api/v1/nodes")["items"]):
        return
    api(opts, "/standin/node", {"name": name, "op": "delete"})
    print('node "%s" deleted' % name)


# The CRI, as far as the stand-ins use it: the stand-in containerd answers `info` on its unix socket
# with what `crictl info` prints (not gRPC: only these stand-ins talk to it).
CONTAINERD_CONFIG = "/etc/containerd/config.toml"
CONTAINERD_SOCK = "/run/containerd/containerd.sock"
CRI = "io.containerd.grpc.v1.cri"

# The shape of containerd 1.7's `containerd config default`, cut to the keys around the ones
# installers edit. Like the real one it has both the deprecated `systemd_cgroup` (v1 shims only:
# containerd refuses it with runc.v2) and runc's `SystemdCgroup`, the one to set.
DEFAULT_CONFIG = """disabled_plugins = []
imports = []
oom_score = 0
plugin_dir = ""
required_plugins = []
root = "/var/lib/containerd"
state = "/run/containerd"
temp = ""
version = 2

[cgroup]
  path = ""

[grpc]
  address = "/run/containerd/containerd.sock"
  gid = 0
  max_recv_message_size = 16777216
  max_send_message_size = 16777216
  uid = 0

[plugins]

  [plugins."io.containerd.grpc.v1.cri"]
    enable_selinux = false
    sandbox_image = "registry.k8s.io/pause:3.8"
    systemd_cgroup = false

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/opt/cni/bin"
      conf_dir = "/etc/cni/net.d"

    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      snapshotter = "overlayfs"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
          base_runtime_spec = ""
          runtime_type = "io.containerd.runc.v2"

          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
            BinaryName = ""
            CriuImagePath = ""
            NoNewKeyring = false
            NoPivotRoot = false
            Root = ""
            ShimCgroup = ""
            SystemdCgroup = false
"""


def runtime_info(endpoint):
    """What the runtime at `endpoint` (unix://PATH) reports; RuntimeError with crictl's words when
    it does not answer."""
    path = endpoint.split("://", 1)[-1]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.settimeout(5)
            c.connect(path)
            c.sendall(b"info\n")
            answer = json.loads(c.makefile("rb").readline())
    except (OSError, ValueError) as e:
        answer = {"error": "rpc error: code = Unavailable desc = connection error: dial unix %s: %s" % (path, e)}
    if "error" in answer:
        raise RuntimeError('validate service connection: validate CRI v1 runtime API for endpoint "%s": %s'
                           % (endpoint, answer["error"]))
    return answer


def runtime_ready(endpoint, prefix=""):
    """runtime_info, or exit with its error after `prefix` (crictl and the kubelet exit so)."""
    try:
        return runtime_info(endpoint)
    except RuntimeError as e:
        die(prefix + str(e))


def api(opts, path, body=None):
    """A request to the apiserver of the kubeconfig (--kubeconfig, $KUBECONFIG, admin.conf) as its
    user; JSON in and out. An HTTP error ends kubectl with the apiserver's words, as kubectl does."""
    kc = kubeconfig_fields(opts.get("kubeconfig") or os.environ.get("KUBECONFIG") or K8S + "/admin.conf")
    ctx = ssl.create_default_context(cadata=base64.b64decode(kc["certificate-authority-data"]).decode())
    with tempfile.TemporaryDirectory() as d:
        write(d + "/c", base64.b64decode(kc["client-certificate-data"]), 0o600)
        write(d + "/k", base64.b64decode(kc["client-key-data"]), 0o600)
        ctx.load_cert_chain(d + "/c", d + "/k")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(kc["server"] + path, data=data, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        die(e.read().decode(errors="replace"))


def kubectl_apply(opts):
    path = opts.get("f") or opts.get("filename")
    if not path or path is True:
        die("error: must specify one of -f and -k")
    try:
        manifest = read(path).decode()
    except OSError as e:
        die("error: the path \"%s\" cannot be read: %s" % (path, e.strerror))
    for line in api(opts, "/standin/apply", {"manifest": manifest})["said"]:
        print(line)


def kubectl_get(kind, name, opts):
    """Applied objects of a kind (DaemonSet, daemonset, daemonsets, ds...), by name and namespace."""
    short = {"ds": "daemonset", "deploy": "deployment", "cm": "configmap", "sa": "serviceaccount",
             "ns": "namespace", "svc": "service", "crd": "customresourcedefinition",
             "cc": "clusterconfiguration"}
    want = short.get(kind.lower(), kind.lower())
    names = {want, want[:-1] if want.endswith("s") else want}
    ns = opts.get("n") or opts.get("namespace") or "default"
    found = [o for o in api(opts, "/standin/objects")["items"]
             if o["kind"].lower() in names and (name is None or o["name"] == name)
             and (opts.get("A") or opts.get("all-namespaces") or o["namespace"] in (ns, ""))]
    if not found:
        die('Error from server (NotFound): %s "%s" not found' % (kind, name) if name
            else "No resources found in %s namespace." % ns)
    if opts.get("o") == "yaml" or opts.get("output") == "yaml":
        return print("---\n".join(o["manifest"] for o in found), end="")
    print("%-16s %-32s %s" % ("NAMESPACE", "NAME", "AGE"))
    for o in sorted(found, key=lambda o: (o["namespace"], o["name"])):
        print("%-16s %-32s %ds" % (o["namespace"] or "<none>", o["name"], time.time() - o["applied"]))


def crictl(argv):
    if "--version" in argv or "version" in argv:
        return print("crictl version %s (kswizard lab STAND-IN, not the real crictl)" % CONTRACT)
    if argv[:1] == ["info"]:
        endpoint = "unix://" + CONTAINERD_SOCK
        if os.path.exists("/etc/crictl.yaml"):
            m = re.search(r"^runtime-endpoint:\s*(\S+)", read("/etc/crictl.yaml").decode(), re.M)
            endpoint = m.group(1) if m else endpoint
        return print(json.dumps(runtime_ready(endpoint), indent=2))
    die("crictl stand-in: only `info` and `--version` are supported")


def containerd(argv):
    opts, pos = flags(argv)
    if opts.get("version") or "-v" in argv:
        return print("containerd kswizard-lab-standin 1.7.0 (kswizard lab STAND-IN, not the real containerd)")
    if pos[:2] == ["config", "default"]:
        return print(DEFAULT_CONFIG, end="")
    if pos:
        die("containerd stand-in: only the daemon, `config default` and `--version` are supported")
    containerd_daemon(opts.get("config", CONTAINERD_CONFIG))


def containerd_daemon(path):
    """The daemon as containerd.service runs it: reads its config as containerd does (a TOML error,
    or systemd_cgroup with runc.v2, stops it), serves its socket, then tells systemd it is ready."""
    conf = {}
    if os.path.exists(path):
        try:
            conf = tomllib.loads(read(path).decode())
        except tomllib.TOMLDecodeError as e:
            die('containerd: failed to load TOML from %s: %s' % (path, e))
    cri = conf.get("plugins", {}).get(CRI, {})
    runc = cri.get("containerd", {}).get("runtimes", {}).get("runc", {})
    if cri.get("systemd_cgroup") and runc.get("runtime_type", "io.containerd.runc.v2") != "io.containerd.runtime.v1.linux":
        die("containerd: invalid plugin config: `systemd_cgroup` only works for runtime io.containerd.runtime.v1.linux")
    address = conf.get("grpc", {}).get("address", CONTAINERD_SOCK)
    disabled = set(conf.get("disabled_plugins", []))
    if disabled & {"cri", CRI}:
        info = {"error": "rpc error: code = Unimplemented desc = unknown service runtime.v1.RuntimeService"}
    else:
        info = {"status": {"conditions": [
            {"type": "RuntimeReady", "status": True, "reason": "", "message": ""},
            {"type": "NetworkReady", "status": False, "reason": "NetworkPluginNotReady",
             "message": "Network plugin returns error: cni plugin not initialized"}]},
            "config": {"containerd": {"defaultRuntimeName": "runc", "runtimes": {"runc": {
                "runtimeType": runc.get("runtime_type", "io.containerd.runc.v2"),
                "options": runc.get("options", {"SystemdCgroup": False})}}},
                "sandboxImage": cri.get("sandbox_image", "registry.k8s.io/pause:3.8"),
                "containerdEndpoint": address},
            "note": "kswizard lab STAND-IN: no containers run in the lab"}

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            if self.rfile.readline().strip() == b"info":
                self.wfile.write(json.dumps(info).encode() + b"\n")

    os.makedirs(os.path.dirname(address), exist_ok=True)
    if os.path.exists(address):
        os.unlink(address)
    server = socketserver.ThreadingUnixStreamServer(address, Handler)
    os.chmod(address, 0o660)
    signal.signal(signal.SIGTERM, lambda *_: (os.unlink(address), sys.exit(0)))
    print("containerd (kswizard lab STAND-IN) serving on %s, config %s" % (address, path), flush=True)
    sd_notify("READY=1")
    server.serve_forever()


def sd_notify(state):
    """Type=notify: tell systemd the service is up (nothing to tell when not started by systemd)."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect("\0" + addr[1:] if addr.startswith("@") else addr)
        s.sendall(state.encode())


def runc(argv):
    if "--version" in argv or "-v" in argv:
        return print("runc version 1.1.9 (kswizard lab STAND-IN, not the real runc)\nspec: 1.0.2-dev")
    die("runc stand-in: only --version is supported: no containers run in the lab")


def serve_in_thread(address, routes):
    """A plain HTTP server on `address` answering GET `routes` {path: () -> text}, in a thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            route = routes.get(self.path)
            body = (route() if route else "not found").encode()
            self.send_response(200 if route else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            pass

    server = ThreadingHTTPServer(address, Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


TOOLS = {"kubeadm": kubeadm, "kubelet": kubelet, "kubectl": kubectl, "crictl": crictl,
         "containerd": containerd, "runc": runc, "apiserver": apiserver}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TOOLS:
        die("usage: standin.py {%s} ARGS" % ",".join(TOOLS))
    TOOLS[sys.argv[1]](sys.argv[2:])
