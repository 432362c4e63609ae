"""A stand-in for a cloud registry's token service (the Docker token protocol), for tests only.

Real registries that use bearer tokens (GHCR, Docker Hub, Harbor, ECR's and GAR's Docker
endpoints) send clients to a separate auth service; the CNCF distribution registry only
verifies tokens. This small aiohttp server plays that service on loopback: ``GET /token?
service=…&scope=repository:NAME:ACTIONS`` with HTTP basic auth answers ``{"token": JWT}``, an
ES256 JWT carrying its signing certificate in ``x5c`` (the registry trusts that certificate
through ``rootcertbundle``), issued by ``ISSUER`` for audience ``service`` and granting the
actions asked for. Wrong credentials get 401. ``requests`` records what was asked, to check
what a client sent where.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

ISSUER = "tether-test-token-service"
SERVICE = "tether-test-registry"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService:
    """The token service on 127.0.0.1, for one user, with a fresh key and certificate."""

    def __init__(self, directory: Path, user: str, password: str) -> None:
        self.user, self.password = user, password
        self.requests: list[dict[str, str]] = []
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.now(UTC)
        self._certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .sign(self._key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        self.certificate_path = directory / "token-signer.crt"
        self.certificate_path.write_bytes(
            self._certificate.public_bytes(serialization.Encoding.PEM)
        )
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._started.wait(10)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self._port}/token"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/token", self._token)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self._port = self._runner.addresses[0][1]
        self._started.set()
        self._loop.run_forever()

    async def _token(self, request: web.Request) -> web.Response:
        self.requests.append(
            {
                "scope": request.query.get("scope", ""),
                "service": request.query.get("service", ""),
                "authorization": request.headers.get("Authorization", ""),
            }
        )
        expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return web.Response(status=401, text='{"details":"incorrect username or password"}')
        access = []
        for scope in request.query.getall("scope", []):
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        return web.json_response({"token": self._jwt(request.query.get("service", ""), access)})

    def _jwt(self, audience: str, access: list[dict[str, object]]) -> str:
        der = self._certificate.public_bytes(serialization.Encoding.DER)
        header = {"alg": "ES256", "typ": "JWT", "x5c": [base64.b64encode(der).decode()]}
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": self.user,
            "aud": audience,
            "exp": now + 300,
            "nbf": now - 60,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        r, s = decode_dss_signature(
            self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        )
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
