"""REST client for the RHEV-M / oVirt engine API, versions 3 and 4 (XML), over requests.

One :class:`Engine` is one HTTPS session with one engine: it picks the API version (from
configuration, else from the API root), authenticates with HTTP Basic ``user@domain`` plus
``Prefer: persistent-auth`` (the engine's JSESSIONID cookie is reused for every later call)
or with an SSO bearer token (``/ovirt-engine/sso/oauth/token``), verifies TLS against the
CA file the administrator configured, and turns every engine answer into either an
``xml.etree`` element or one typed, one-line :mod:`nodemgr.plugins.base` error.

Wire format: ``../shared/reference/hypervisor-apis.md`` §1 (from ovirt-engine-api-model,
ovirt-engine's restapi sources and recorded traffic). The helpers at the bottom read values
the way both versions print them (v3 ``<status><state>``, topology attributes,
``<mac address=>``; v4 child elements).

This module must never put a password or token in a message, log or exception, never
follow a plain-HTTP URL unless the configuration allows it, and never retry a rejected
login.
"""

from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as ET
from urllib.parse import quote, urlsplit

from nodemgr.plugins.base import InvalidState, NotFound, PermanentError, Unreachable

V4_PATH = "/ovirt-engine/api"
V3_PATH = "/api"
SSO_PATH = "/ovirt-engine/sso/oauth/token"
#: where the official SDK (ovirt-engine-sdk-python ``Connection.close()``) revokes its token
SSO_LOGOUT_PATH = "/ovirt-engine/services/sso-logout"
CA_PATH = "/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA"

#: (engine base, user) -> [SSO token, sessions using it], per process: sessions with the same
#: engine share one login; the last one to close logs it out (sso-logout)
_tokens: dict[tuple[str, str], list] = {}
_tokens_lock = threading.Lock()


def _short(text: str, limit: int = 160) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Engine:
    """A session with one engine.

    Args:
        url: engine API URL (``https://engine.example.com/ovirt-engine/api`` or ``.../api``);
            a bare ``https://host`` means ``/ovirt-engine/api``.
        username: ``user@domain`` (``admin@internal``).
        password: the password (kept only in memory).
        version: ``"3"``, ``"4"`` or None/``"auto"`` (read the API root).
        ca_file: PEM file of the CA that signed the engine's certificate (None: the system
            trust store).
        allow_http: accept a plain ``http://`` URL (tests, labs); refused otherwise.
        auth: ``basic`` or ``sso``.
        timeout: seconds for each HTTP request (connect and read).
    Raises:
        PermanentError: plain-HTTP URL not allowed, or an unusable URL.
    """

    def __init__(self, url: str, username: str | None, password: str | None, *,
                 version: str | None = None, ca_file: str | None = None,
                 allow_http: bool = False, auth: str = "basic", timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise PermanentError(f"engine URL '{url}' is not an http(s) URL")
        if parts.scheme == "http" and not allow_http:
            raise PermanentError(f"engine URL {url} is plain HTTP; use https (or set "
                                 "hostconn.options insecure_http=1 to allow it)")
        if auth not in ("basic", "sso"):
            raise PermanentError(f"unknown engine auth method '{auth}' (basic or sso)")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        path = parts.path.rstrip("/")
        self.path = path or V4_PATH
        self.username = username or "admin@internal"
        self._password = password
        self.version = None if version in (None, "", "auto") else str(version)
        if self.version not in (None, "3", "4"):
            raise PermanentError(f"unsupported engine API version '{version}' (3 or 4)")
        self.ca_file = ca_file
        self.auth = auth
        self.timeout = timeout
        self._session = None
        self._holds_token = False
        self.where = parts.hostname

    # -- session ----------------------------------------------------------------------
    def connect(self) -> None:
        """Open the session, log in and learn the API version. Raises Unreachable,
        PermanentError (credentials, TLS, not an oVirt API)."""
        import requests

        if not self._password:
            raise PermanentError(f"no password for {self.username} on engine {self.where} "
                                 "(passwd table, key rhevm)")
        s = requests.Session()
        s.verify = self.ca_file or True
        s.headers.update({"Accept": "application/xml", "Content-Type": "application/xml",
                          "Prefer": "persistent-auth", "User-Agent": "nodemgr-rhevm"})
        self._session = s
        if self.auth == "sso":
            s.headers["Authorization"] = "Bearer " + self._sso_token()
        else:
            s.auth = (self.username, self._password)
        if self.version:
            s.headers["Version"] = self.version
        root = self.get("")
        if root.tag != "api":
            raise PermanentError(f"{self.where} answered <{root.tag}>, not the oVirt API root")
        if not self.version:
            self.version = api_major(root) or ("3" if self.path == V3_PATH else "4")
            s.headers["Version"] = self.version
        self.product = text(root, "product_info/name") or "oVirt Engine"
        # the session cookie now authenticates; Basic credentials are no longer sent
        if self.auth == "basic" and s.cookies:
            s.auth = None

    def close(self) -> None:
        """Forget the session; with SSO, the last session of this process that uses the
        token revokes it (as the official SDK's ``close()`` does). Never raises."""
        if self._session is not None:
            try:
                self._sso_logout()
            except Exception:  # noqa: BLE001 - close never raises
                pass
            try:
                self._session.close()
            except Exception:  # noqa: BLE001 - close never raises
                pass
            self._session = None

    def _sso_logout(self) -> None:
        """Release this session's hold on the SSO token; the last holder revokes it with
        ``POST /ovirt-engine/services/sso-logout`` (form ``scope=ovirt-app-api&token=...``,
        JSON answer), like ovirt-engine-sdk-python's ``_revoke_access_token``."""
        if not self._holds_token:
            return
        self._holds_token = False
        key = (self.origin, self.username)
        with _tokens_lock:
            entry = _tokens.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _tokens[key]
        self._revoke(entry[0])

    def _revoke(self, token: str) -> None:
        self._raw("POST", self.origin + SSO_LOGOUT_PATH,
                  data={"scope": "ovirt-app-api", "token": token},
                  headers={"Accept": "application/json", "Authorization": None,
                           "Content-Type": "application/x-www-form-urlencoded"})

    def _sso_token(self) -> str:
        key = (self.origin, self.username)
        with _tokens_lock:
            if key in _tokens:
                _tokens[key][1] += 1
                self._holds_token = True
                return _tokens[key][0]
        r = self._raw("POST", self.origin + SSO_PATH, data={
            "grant_type": "password", "scope": "ovirt-app-api", "username": self.username,
            "password": self._password}, headers={
            "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"})
        try:
            body = r.json()
        except ValueError:
            body = {}
        token = body.get("access_token") if isinstance(body, dict) else None
        if r.status_code != 200 or not token:
            reason = (body.get("error_description") or body.get("error")
                      if isinstance(body, dict) else None) or f"HTTP {r.status_code}"
            raise PermanentError(f"SSO login as {self.username} on {self.where} failed: "
                                 f"{_short(str(reason))}")
        with _tokens_lock:
            if key in _tokens:  # another session logged in meanwhile: use its token
                _tokens[key][1] += 1
                self._holds_token = True
                stale, token = token, _tokens[key][0]
            else:
                _tokens[key] = [token, 1]
                self._holds_token = True
                stale = None
        if stale is not None:
            self._revoke(stale)
        return token

    def _raw(self, method: str, url: str, **kw):
        import requests

        s = self._session
        try:
            # verify per request: a session-level value loses to $REQUESTS_CA_BUNDLE
            return s.request(method, url, timeout=self.timeout, allow_redirects=False,
                             verify=self.ca_file or True, **kw)
        except requests.exceptions.SSLError:
            raise PermanentError(f"TLS certificate of {self.where} not trusted (set "
                                 "hostconn.options ca_file=..., fetch it with cfgve --getca)"
                                 ) from None
        except requests.exceptions.Timeout:
            raise Unreachable(f"engine {self.where} did not answer within "
                              f"{self.timeout:g} s") from None
        except requests.exceptions.ConnectionError:
            raise Unreachable(f"cannot connect to engine {self.where}") from None
        except requests.exceptions.RequestException as exc:
            raise Unreachable(f"engine {self.where}: {type(exc).__name__}") from None

    # -- requests ---------------------------------------------------------------------
    def url(self, path: str) -> str:
        """Absolute URL of API *path* (``vms/123``) or of an href the engine printed."""
        if path.startswith(("/api/", "/ovirt-engine/")):
            if path.startswith("/api/") and self.path != V3_PATH:  # 3.6 printed /api hrefs
                path = self.path + path[4:]
            return self.origin + path
        return f"{self.origin}{self.path}/{path}" if path else f"{self.origin}{self.path}"

    def request(self, method: str, path: str, body: ET.Element | str | None = None,
                params: dict | None = None) -> ET.Element | None:
        """One API call.

        Args:
            method: GET, POST, PUT, DELETE.
            path: relative API path or an engine href.
            body: request XML (element or text) or None.
            params: query parameters.
        Returns:
            The parsed answer, or None for an empty body (DELETE).
        Raises:
            PermanentError: 401 (one message, no retry), 400/403/500 faults, HTML or
                malformed answers; NotFound: 404; InvalidState: 409; Unreachable.
        """
        data = ET.tostring(body, encoding="unicode") if isinstance(body, ET.Element) else body
        r = self._raw(method, self.url(path), data=data, params=params)
        ctype = r.headers.get("Content-Type", "")
        content = r.content or b""
        if r.status_code == 401:
            raise PermanentError(f"engine {self.where} rejected the credentials of "
                                 f"{self.username} (HTTP 401)")
        root = None
        if content.strip():
            if "html" in ctype.lower() or content.lstrip()[:1] != b"<" or \
                    content.lstrip()[:5].lower() in (b"<html", b"<!doc"):
                if r.status_code == 404:
                    raise NotFound(f"{path or 'API root'} not found on engine {self.where}")
                raise PermanentError(f"engine {self.where} answered HTTP {r.status_code} "
                                     f"with {ctype.split(';')[0] or 'non-XML'}, not API XML")
            try:
                root = ET.fromstring(content)
            except ET.ParseError as exc:
                raise PermanentError(f"engine {self.where} sent malformed XML (HTTP "
                                     f"{r.status_code}): {exc}") from None
        if r.status_code >= 300 or (root is not None and fault_of(root) is not None):
            msg = fault_text(root) if root is not None else ""
            if r.status_code == 404:
                raise NotFound(msg or f"{path or 'API root'} not found on engine {self.where}")
            if r.status_code == 409:
                raise InvalidState(msg or "conflict (HTTP 409)")
            raise PermanentError(msg or f"engine {self.where} answered HTTP {r.status_code}")
        return root

    def get(self, path: str, params: dict | None = None) -> ET.Element:
        """GET *path*; the answer element. Raises as :meth:`request`."""
        root = self.request("GET", path, params=params)
        if root is None:
            raise PermanentError(f"engine {self.where} sent an empty answer for {path}")
        return root

    def list(self, path: str, params: dict | None = None) -> list[ET.Element]:
        """The members of the collection at *path* (``vms``, ``hosts/{id}/nics``): GET, then
        :func:`members`. Raises as :meth:`request`."""
        return members(self.get(path, params=params))

    def search(self, collection: str, name: str) -> list[ET.Element]:
        """Objects of *collection* (``vms``) named exactly *name* (``?search=name=...``,
        then filtered, since the engine's search is case-insensitive and wildcarded)."""
        return [e for e in self.list(collection, params={"search": f"name={name}"})
                if text(e, "name") == name]

    def find(self, collection: str, name: str, what: str) -> ET.Element:
        """The one object of *collection* named *name*; NotFound naming *what*."""
        found = self.search(collection, name)
        if not found:
            raise NotFound(f"{what} '{name}' not found on engine {self.where}")
        return found[0]

    def fetch_ca(self) -> bytes:
        """The engine's CA certificate (PEM), over HTTPS without verification: only for the
        explicit admin command that stores it (trust on first use)."""
        import warnings

        import requests
        import urllib3

        try:
            with warnings.catch_warnings():  # unverified on purpose: the admin asked for it
                warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                r = requests.get(self.origin + CA_PATH, timeout=self.timeout, verify=False)
        except requests.exceptions.RequestException as exc:
            raise Unreachable(f"cannot fetch the CA of {self.where}: {type(exc).__name__}"
                              ) from None
        if r.status_code != 200 or b"BEGIN CERTIFICATE" not in r.content:
            raise PermanentError(f"engine {self.where} did not return a PEM CA certificate")
        return r.content


# -- reading values the way both versions print them -----------------------------------


def text(e: ET.Element | None, path: str, default: str | None = None) -> str | None:
    """Text of the child at *path* (``cpu/topology/cores``), stripped, or *default*."""
    if e is None:
        return default
    c = e.find(path)
    return c.text.strip() if c is not None and c.text and c.text.strip() else default


def members(collection: ET.Element) -> list[ET.Element]:
    """The objects of a collection answer: its children except the collection's own
    ``<actions>`` and ``<link>`` elements (a v3 ``<host_nics>`` starts with
    ``<actions><link rel="setupnetworks" .../></actions>``, which is not a NIC)."""
    return [c for c in collection if c.tag not in ("actions", "link")]


def status(e: ET.Element | None) -> str:
    """Status of an object: v4 ``<status>up</status>``, v3 ``<status><state>up</state>``."""
    if e is None:
        return ""
    st = e.find("status")
    if st is None:
        return ""
    return (text(st, "state") or (st.text or "")).strip().lower()


def api_major(root: ET.Element) -> str | None:
    """Major API version from the root's ``product_info/version`` (v4 child element, v3
    attribute), else None."""
    for path in ("product_info/version", "version"):
        v = root.find(path)
        if v is not None:
            major = v.get("major") or text(v, "major")
            if major:
                return "3" if major.startswith("3") else "4"
    return None


def topology(e: ET.Element) -> tuple[int, int]:
    """(sockets, cores) of ``cpu/topology`` in either version; (1, 1) when absent."""
    t = e.find("cpu/topology")
    if t is None:
        return 1, 1
    s = t.get("sockets") or text(t, "sockets") or "1"
    c = t.get("cores") or text(t, "cores") or "1"
    return int(s), int(c)


def boot_devices(e: ET.Element) -> list[str]:
    """Boot devices: v4 ``os/boot/devices/device``, v3 ``os/boot@dev``."""
    devs = [d.text.strip() for d in e.findall("os/boot/devices/device") if d.text]
    return devs or [b.get("dev") for b in e.findall("os/boot") if b.get("dev")]


def mac(e: ET.Element) -> str:
    """MAC of a NIC: v4 ``mac/address``, v3 ``mac@address``."""
    m = e.find("mac")
    if m is None:
        return ""
    return (m.get("address") or text(m, "address") or "").lower()


def link_id(e: ET.Element, tag: str) -> str | None:
    """``id`` of the linked object ``<tag id=.../>``, or None."""
    c = e.find(tag)
    return c.get("id") if c is not None else None


def fault_of(root: ET.Element) -> ET.Element | None:
    """The ``<fault>`` of an answer (bare, or inside ``<action>``), or None."""
    if root.tag == "fault":
        return root
    return root.find("fault")


def fault_text(root: ET.Element) -> str:
    """One line from a fault: its detail (brackets of the engine's message list removed),
    else its reason; v3 engines sometimes sent detail ``[]``."""
    f = fault_of(root)
    if f is None:
        return ""
    detail = (text(f, "detail") or "").strip()
    if detail.startswith("[") and detail.endswith("]"):
        detail = detail[1:-1].strip()
    # the engine appends advice for its web UI on lines of their own ("Alternatives:\n-Create
    # a disk...\n-Use the Run-Once command..."): the message is what comes before
    detail = _ADVICE.split(detail, maxsplit=1)[0].strip()
    return _short(detail or text(f, "reason") or "engine fault")


_ADVICE = re.compile(r"\n\s*Alternatives:", re.I)


def action_state(root: ET.Element | None) -> str:
    """State of an action answer (``complete``, ``pending``, ``failed``), either version."""
    return status(root) if root is not None else "complete"


def el(tag: str, text_: str | None = None, attrib: dict | None = None,
       children: list | None = None) -> ET.Element:
    """Build an element: ``el("vm", children=[el("name", "x")])``."""
    e = ET.Element(tag, attrib or {})
    if text_ is not None:
        e.text = str(text_)
    for c in children or []:
        if c is not None:
            e.append(c)
    return e


def ref(tag: str, *, id_: str | None = None, name: str | None = None) -> ET.Element:
    """A link to another object by id (attribute) or by name (child element)."""
    if id_:
        return el(tag, attrib={"id": id_})
    return el(tag, children=[el("name", name)])


def q(value: str) -> str:
    """URL-quote a path segment."""
    return quote(value, safe="")


# -- cloud-init (API v4) -----------------------------------------------------------------------


def initialization(node: str, params: dict[str, str]) -> ET.Element:
    """The v4 ``<initialization>`` carrying boot parameters (``nodemgr.bootparams`` keys).

    Shape: ovirt-engine-api-model ``Initialization`` and the documented start example
    (``vm_start_cloud_init.http``): ``host_name`` (``hostname``, else *node*);
    ``nic_configurations/nic_configuration`` for ``eth0`` with ``boot_protocol`` ``static``
    (``ip/address``, ``ip/netmask``, ``ip/gateway``) or ``dhcp``, ``on_boot`` true, when an
    ``ip`` is given; ``dns_servers`` (``dns``, space separated); ``authorized_ssh_keys``
    (``ssh_authorized_key``); ``root_password`` (``password``, write-only on the engine);
    ``custom_script``: cloud-config that writes every other non-secret parameter to
    ``/etc/bootparams.conf`` (``nodemgr.bootparams.user_data``).
    """
    import ipaddress

    from nodemgr import bootparams as bp

    kids = [el("host_name", params.get("hostname") or node)]
    ip = params.get("ip")
    if ip:
        nic = [el("name", "eth0"), el("on_boot", "true")]
        if ip == "dhcp":
            nic.append(el("boot_protocol", "dhcp"))
        else:
            iface = ipaddress.ip_interface(ip if "/" in ip else ip + "/24")
            addr = [el("address", str(iface.ip)), el("netmask", str(iface.netmask))]
            if params.get("gateway"):
                addr.append(el("gateway", params["gateway"]))
            nic += [el("boot_protocol", "static"), el("ip", children=addr)]
        kids.append(el("nic_configurations", children=[el("nic_configuration",
                                                            children=nic)]))
    dns = " ".join(d.strip() for d in params.get("dns", "").split(",") if d.strip())
    if dns:
        kids.append(el("dns_servers", dns))
    if params.get("ssh_authorized_key"):
        kids.append(el("authorized_ssh_keys", params["ssh_authorized_key"]))
    if params.get("password"):
        kids.append(el("root_password", params["password"]))
    rest = {k: v for k, v in params.items()
            if k not in ("hostname", "password", "ssh_authorized_key")}
    script = bp.user_data(rest).removeprefix("#cloud-config\n")
    kids.append(el("custom_script", script))
    return el("initialization", children=kids)


def cloud_init_start(node: str, params: dict[str, str]) -> ET.Element:
    """The v4 start action that boots with *params* through cloud-init:
    ``<action><use_cloud_init>true</use_cloud_init><vm>`` + :func:`initialization`."""
    return el("action", children=[el("use_cloud_init", "true"), el("vm", children=[
        initialization(node, params)])])


def initialization_addresses(vm: ET.Element | None) -> list[str]:
    """Static addresses a VM's ``initialization`` gives its NICs (v4), in order."""
    if vm is None:
        return []
    return [a for a in (text(n, "ip/address") for n in vm.findall(
        "initialization/nic_configurations/nic_configuration")
        if text(n, "boot_protocol") == "static") if a]
