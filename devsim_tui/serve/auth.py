"""Who may log in to the SSH seats, and as what: keys with roles, hashed passwords, host key.

Roles: `operator` may act on the estate, `observer` only watches (the control room runs with
`--observer`), `facilitator` may also steer a shared world's clock and drill (`serve ssh
--shared`; on a seat with its own world it is an operator). A key's role comes from an authorized_keys option this server understands and
OpenSSH's own format tolerates:

    devsim-role="observer" ssh-ed25519 AAAA... alice@laptop

Keys without the option are operators: listing a key is already the decision to trust it. So
a role option that is misspelt (`Devsim-Role`, `devsim_role`, ...), given twice or without a
value stops the server at start (FILE:LINE), never falls back to operator. Every
other OpenSSH option is parsed by asyncssh; `from="..."` patterns are honoured, and nothing the
rest could restrict (commands, forwarding, agents, X11) is ever granted here anyway.

Passwords are off unless a password file is given; it holds `user:role:hash` lines made by
`devsim-tui serve hash-password` (scrypt by default, PBKDF2-SHA256 also accepted), compared in
constant time.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from devsim_tui.access import ROLES
from devsim_tui.errors import UserError

DEFAULT_ROLE = "operator"
ROLE_OPTION = "devsim-role"
HOST_KEY_NAME = "ssh_host_ed25519_key"

# scrypt cost: 2**14 * 8 * 128 bytes = 16 MiB and ~50 ms per check; OWASP's minimum for scrypt.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
PBKDF2_ITERATIONS = 600_000

# OpenSSH's authorized_keys options (sshd(8), "AUTHORIZED_KEYS FILE FORMAT") and asyncssh's
# `subject`: never taken for a misspelt role option.
OPENSSH_OPTIONS = frozenset((
    "agent-forwarding", "cert-authority", "command", "environment", "expiry-time", "from",
    "no-agent-forwarding", "no-port-forwarding", "no-pty", "no-user-rc", "no-x11-forwarding",
    "permitlisten", "permitopen", "port-forwarding", "principals", "pty", "no-touch-required",
    "verify-required", "restrict", "tunnel", "user-rc", "x11-forwarding", "subject"))


# ---------------------------------------------------------------------- host key


def data_dir() -> Path:
    """$XDG_DATA_HOME/devsim-tui when set (also on macOS, for tests and tidy setups),
    else the platform's user data directory."""
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg:
        return Path(xdg) / "devsim-tui"
    import platformdirs

    return Path(platformdirs.user_data_dir("devsim-tui", appauthor=False))


def load_host_key(path: Path | None = None) -> tuple[asyncssh.SSHKey, Path]:
    """The server's host key: `path` if given (it must exist), else the one in the data
    directory, generated on first use so returning clients keep trusting the same server."""
    if path is not None:
        try:
            return asyncssh.read_private_key(str(path)), path
        except (OSError, asyncssh.KeyImportError) as exc:
            raise UserError(f"cannot read host key {path}: {exc}") from exc
    path = data_dir() / HOST_KEY_NAME
    if path.exists():
        return load_host_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    key = asyncssh.generate_private_key("ssh-ed25519", comment="devsim-tui host key")
    # Create with 0600 from the start: the private key is never readable by others, not even
    # for the moment between writing and chmod.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.export_private_key("openssh"))
    key.write_public_key(str(path) + ".pub")
    return key, path


# ---------------------------------------------------------------------- keys


def parse_options(line: str) -> list[tuple[str, str | None]]:
    """The leading options of an authorized_keys line as (name, value) pairs, in order, read
    exactly as asyncssh reads them (double quotes, backslash escapes, the first unquoted space
    ends the field); [] when the line starts with the key itself. `value` is None for a flag."""
    try:
        asyncssh.import_public_key(line)
        return []  # the whole line is a key: no options
    except (asyncssh.KeyImportError, ValueError):
        pass
    options: list[tuple[str, str | None]] = []
    quoted = escaped = False
    option = ""

    def add(text: str) -> None:
        if "=" in text:
            name, value = text.split("=", 1)
            options.append((name, value))
        elif text:
            options.append((text, None))

    for ch in line:
        if escaped:
            option += ch
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif quoted:
            option += ch
        elif ch in " \t":
            break
        elif ch == ",":
            add(option)
            option = ""
        else:
            option += ch
    add(option)
    return options


def _resembles_role_option(name: str) -> bool:
    """`Devsim-Role`, `devsim_role`, `devsimrole`, `devsim-roles`, `role`, ...: a name someone
    probably meant as the role option. Such a name is refused rather than ignored, because
    ignoring it would make the key an operator."""
    plain = re.sub(r"[^a-z0-9]", "", name.casefold())
    if plain in ("role", "roles", "devsim", "seat", "seatrole"):
        return True
    if "role" in plain or "devsim" in plain:
        return True
    return difflib.SequenceMatcher(None, plain, "devsimrole").ratio() >= 0.75


def check_role_options(line: str, where: str) -> str | None:
    """The role a line asks for (None: no role option), or a UserError naming `where`
    (FILE:LINE) for an unknown role, a role option given twice or without a value, or an
    option that looks like a misspelt role option."""
    roles: list[str] = []
    for name, value in parse_options(line):
        if name == ROLE_OPTION:
            if value is None:
                raise UserError(f"{where}: {ROLE_OPTION} needs a value: "
                                f'{ROLE_OPTION}="observer" (have: {", ".join(ROLES)})')
            if value not in ROLES:
                # Fail closed: a typo must not silently make someone an operator.
                raise UserError(f"{where}: unknown {ROLE_OPTION} {value!r} "
                                f"(have: {', '.join(ROLES)})")
            roles.append(value)
        elif name.casefold() not in OPENSSH_OPTIONS and _resembles_role_option(name):
            raise UserError(f"{where}: unknown option {name!r}: did you mean "
                            f'{ROLE_OPTION}="{value or "observer"}"? (the role option is '
                            f"spelt exactly {ROLE_OPTION}; a key without it is an operator)")
    if len(roles) > 1:
        raise UserError(f"{where}: {ROLE_OPTION} given {len(roles)} times "
                        f"({', '.join(roles)}); give it once")
    return roles[0] if roles else None


def _strip_quotes(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


class AuthorizedKeys:
    """An authorized_keys file whose entries may carry a devsim-role option."""

    def __init__(self, text: str, source: str = "authorized_keys") -> None:
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            check_role_options(line, f"{source}:{n}")
        try:
            self._keys = asyncssh.import_authorized_keys(text)
        except ValueError as exc:
            raise UserError(f"{source}: {exc}") from exc

    @classmethod
    def read(cls, path: Path) -> "AuthorizedKeys":
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise UserError(f"cannot read authorized keys {path}: {exc}") from exc
        return cls(text, str(path))

    def role_of(self, key: asyncssh.SSHKey, peer_addr: str) -> str | None:
        """The role of `key` connecting from `peer_addr`, or None if it may not log in."""
        options = self._keys.validate(key, peer_addr, peer_addr)
        if options is None:
            return None
        values = options.get(ROLE_OPTION) or [DEFAULT_ROLE]
        return _strip_quotes(str(values[-1]))


def fingerprint(key: asyncssh.SSHKey) -> str:
    return key.get_fingerprint("sha256")


# ---------------------------------------------------------------------- passwords


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, scheme: str = "scrypt") -> str:
    """A self-describing hash: `scrypt$N$r$p$salt$hash` or `pbkdf2-sha256$iterations$salt$hash`."""
    salt = secrets.token_bytes(16)
    secret = password.encode()
    if scheme == "scrypt":
        digest = hashlib.scrypt(secret, salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
        return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"
    if scheme == "pbkdf2":
        digest = hashlib.pbkdf2_hmac("sha256", secret, salt, PBKDF2_ITERATIONS)
        return f"pbkdf2-sha256${PBKDF2_ITERATIONS}${_b64(salt)}${_b64(digest)}"
    raise ValueError(f"unknown scheme {scheme!r}")


def _check_hash_format(hashed: str) -> None:
    parts = hashed.split("$")
    if parts[0] == "scrypt" and len(parts) == 6 and all(p.isdigit() for p in parts[1:4]):
        return
    if parts[0] == "pbkdf2-sha256" and len(parts) == 4 and parts[1].isdigit():
        return
    raise ValueError("expected scrypt$N$r$p$salt$hash or pbkdf2-sha256$iterations$salt$hash "
                     "(make one with `devsim-tui serve hash-password`)")


def verify_password(password: str, hashed: str) -> bool:
    """Recompute and compare in constant time; a malformed hash never matches."""
    try:
        _check_hash_format(hashed)
        parts = hashed.split("$")
        secret = password.encode()
        if parts[0] == "scrypt":
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            salt, want = _unb64(parts[4]), _unb64(parts[5])
            got = hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, dklen=len(want),
                                 maxmem=256 * n * r * p + 2**20)
        else:
            salt, want = _unb64(parts[2]), _unb64(parts[3])
            got = hashlib.pbkdf2_hmac("sha256", secret, salt, int(parts[1]), len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


@dataclass(frozen=True)
class PasswordEntry:
    user: str
    role: str
    hashed: str


class PasswordFile:
    """`user:role:hash` lines; `#` comments and blank lines are skipped."""

    def __init__(self, text: str, source: str = "passwords") -> None:
        self.entries: dict[str, PasswordEntry] = {}
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(":", 2)
            if len(parts) != 3 or not parts[0]:
                raise UserError(f"{source}:{n}: expected user:role:hash")
            user, role, hashed = parts
            if role not in ROLES:
                raise UserError(f"{source}:{n}: unknown role {role!r} (have: {', '.join(ROLES)})")
            try:
                _check_hash_format(hashed)
            except ValueError as exc:
                # A plain-text password in the file is refused outright, never compared.
                raise UserError(f"{source}:{n}: {exc}") from exc
            self.entries[user] = PasswordEntry(user, role, hashed)
        # Unknown users are checked against a real hash too, so timing does not tell which
        # user names exist.
        self._decoy = hash_password(secrets.token_hex(16))

    @classmethod
    def read(cls, path: Path) -> "PasswordFile":
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise UserError(f"cannot read password file {path}: {exc}") from exc
        return cls(text, str(path))

    def check(self, user: str, password: str) -> str | None:
        """The user's role if the password is right, else None (slow on purpose: scrypt)."""
        entry = self.entries.get(user)
        ok = verify_password(password, entry.hashed if entry else self._decoy)
        return entry.role if entry is not None and ok else None
