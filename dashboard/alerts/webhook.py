"""The only code that posts to a notice webhook: a Slack-compatible incoming webhook gets
``{"text": …}`` as JSON (Slack, Mattermost, Rocket.Chat and most chat tools take it).

Guarded (dashboard/rules/delivery.py): the address must pass the same check the settings
form made, and every address its host name resolves to must be on the internet (unless
settings.ALERT_WEBHOOK_ALLOW_PRIVATE); the request then goes to the very address that was
checked (the host name kept for the Host header and TLS), so a name that resolves
elsewhere a moment later cannot turn the post inwards. Redirects are not followed.

A webhook's address is its key (Slack's holds a token in the path): errors and logs name
only its scheme and host (``where``)."""
from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit, urlunsplit

import httpx

from ..rules.delivery import address_problem, webhook_url_problem

TIMEOUT = httpx.Timeout(5.0)
USER_AGENT = "stigg-admin-alerts/1"


class DeliveryFailed(Exception):
    """A notice did not go out. ``transient``: worth trying again later (no answer, a
    5xx, 429); otherwise the address itself is wrong and retrying will not help."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def where(url: str) -> str:
    """The webhook's scheme and host, for errors and logs: never its path or query."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or '?'}"
    except ValueError:
        return "an unreadable address"


def _addresses(host: str, port: int) -> list[str]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DeliveryFailed(f"the webhook's host name did not resolve ({exc})", transient=True) from None
    return list(dict.fromkeys(info[4][0] for info in found))


def _pinned(parts, address: str, port: int) -> str:
    """The URL with its host replaced by the address that was checked."""
    host = f"[{address}]" if ":" in address else address
    return urlunsplit((parts.scheme, f"{host}:{port}", parts.path or "/", parts.query, ""))


def post(url: str, text: str, *, allow_private: bool, verify: bool | ssl.SSLContext = True) -> None:
    """Post ``text`` to the webhook at ``url``; raises DeliveryFailed when it did not go out."""
    problem = webhook_url_problem(url, allow_private)
    if problem:
        raise DeliveryFailed(f"{where(url)}: {problem}", transient=False)
    parts = urlsplit(url)
    host = parts.hostname.rstrip(".")  # type: ignore[union-attr] - the check above requires one
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = _addresses(host, port)
    if not allow_private:
        refused = [a for a in addresses if address_problem(a)]
        if refused:
            raise DeliveryFailed(f"{where(url)} resolves to {refused[0]}, inside this network: not sent",
                                 transient=False)
    answer = _send(parts, host, port, addresses, text, verify)
    if answer.is_success:
        return
    said = " ".join(answer.text.split())[:120]
    transient = answer.status_code in (408, 429) or answer.status_code >= 500
    raise DeliveryFailed(f"{where(url)} answered {answer.status_code}{': ' + said if said else ''}", transient)


def _send(parts, host: str, port: int, addresses: list[str], text: str,
          verify: bool | ssl.SSLContext) -> httpx.Response:
    """Post to the checked addresses in turn until one takes the connection. Through the
    transport itself, not a Client: a Client logs every request's URL (the key), and
    follows nothing anyway."""
    extensions: dict[str, object] = {"timeout": TIMEOUT.as_dict()}
    if parts.scheme == "https":
        extensions["sni_hostname"] = host
    failure = "no address"
    with httpx.HTTPTransport(verify=verify) as transport:
        for address in addresses:
            request = httpx.Request("POST", _pinned(parts, address, port), json={"text": text},
                                    headers={"Host": parts.netloc, "User-Agent": USER_AGENT}, extensions=extensions)
            try:
                answer = transport.handle_request(request)
                try:
                    answer.read()
                finally:
                    answer.close()
                return answer
            except httpx.ConnectError as exc:
                failure = type(exc).__name__  # the next address may answer
            except httpx.HTTPError as exc:
                failure = type(exc).__name__
                break
    raise DeliveryFailed(f"{where(parts.geturl())} did not answer ({failure})", transient=True)
