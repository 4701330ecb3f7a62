"""CURVE keys for a producer, read from the files `keygen` writes (docs/security.md).

    Curve(server="server.pub", key="producer.key")

`server` is the head's public key (a `.pub` file, or its `.key` file); `key` is this
producer's key pair. The head admits the producer only if `producer.pub` is in its
`--curve-producers` allow-list. As with taskpipe's programs, a secret key file that its group
or others may read or write is refused.
"""

import os
import stat

import zmq
import zmq.auth


class CurveError(ValueError):
    """A key file that cannot be used: missing, malformed, or open to other users."""


class Curve:
    """The keys of one producer: the head's public key and this producer's key pair (Z85)."""

    def __init__(self, server, key):
        self.server_public = _load(server, secret_needed=False)[0]
        self.public, self.secret = _load(key, secret_needed=True)

    @classmethod
    def from_z85(cls, server_public, public, secret):
        self = cls.__new__(cls)
        for name, value in (("server_public", server_public), ("public", public),
                            ("secret", secret)):
            value = value.encode() if isinstance(value, str) else bytes(value)
            if len(value) != 40:
                raise CurveError(f"{name}: a Z85 CURVE key is 40 characters, not {len(value)}")
            setattr(self, name, value)
        return self

    def apply(self, socket):
        """Makes `socket` a CURVE client of the head."""
        if not zmq.has("curve"):
            raise CurveError("this libzmq was built without CURVE")
        socket.curve_serverkey = self.server_public
        socket.curve_publickey = self.public
        socket.curve_secretkey = self.secret

    def __repr__(self):
        return (f"Curve(server_public={self.server_public.decode()!r}, "
                f"public={self.public.decode()!r})")


def as_curve(curve):
    """`curve=` of the clients: None, a Curve, or a (server_file, key_file) pair."""
    if curve is None or isinstance(curve, Curve):
        return curve
    if isinstance(curve, (tuple, list)) and len(curve) == 2:
        return Curve(*curve)
    raise TypeError("curve= takes a Curve or a (server_public_file, key_file) pair")


def _load(path, secret_needed):
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise CurveError(f"cannot read key file {path}: {e.strerror}") from None
    try:
        public, secret = zmq.auth.load_certificate(path)
    except Exception as e:
        raise CurveError(f"{path} is not a key file written by keygen: {e}") from None
    if secret_needed:
        if secret is None:
            raise CurveError(f"{path} holds no secret key (give the .key file, not the .pub)")
        if mode & 0o077:
            raise CurveError(f"secret key file {path} is open to other users (mode "
                             f"{stat.S_IMODE(mode):04o}); run: chmod 600 {path}")
    return public, secret
