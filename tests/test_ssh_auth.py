"""Who may log in to the SSH seats: key roles, password hashes, the host key's home."""

from __future__ import annotations

import subprocess
import sys

import asyncssh
import pytest

from devsim_tui.errors import UserError
from devsim_tui.serve.auth import (
    AuthorizedKeys, PasswordFile, data_dir, hash_password, load_host_key, verify_password,
)


def pub(key: asyncssh.SSHKey) -> str:
    return key.export_public_key().decode().strip()


@pytest.fixture(scope="module")
def three_keys():
    # Public halves: what the server is handed when a client offers a key.
    return [asyncssh.generate_private_key("ssh-ed25519").convert_to_public() for _ in range(3)]


def test_roles_from_the_option_prefix_default_operator(three_keys):
    a, b, c = three_keys
    keys = AuthorizedKeys(f"# comment\n{pub(a)}\n"
                          f'devsim-role="observer" {pub(b)} bob\n'
                          f'from="10.*",devsim-role=operator {pub(c)}\n')
    assert keys.role_of(a, "127.0.0.1") == "operator"
    assert keys.role_of(b, "127.0.0.1") == "observer"
    assert keys.role_of(c, "10.1.2.3") == "operator"
    assert keys.role_of(c, "127.0.0.1") is None  # from= is honoured


def test_unknown_role_or_empty_file_is_refused_at_start(three_keys):
    a = three_keys[0]
    with pytest.raises(UserError, match="unknown devsim-role 'obsrver'"):
        AuthorizedKeys(f'devsim-role="obsrver" {pub(a)}\n')
    with pytest.raises(UserError):
        AuthorizedKeys("# nobody\n")
    # A comment that merely mentions the option does not count as one.
    assert AuthorizedKeys(f"{pub(a)} devsim-role=whatever").role_of(a, "::1") == "operator"


@pytest.mark.parametrize("scheme", ["scrypt", "pbkdf2"])
def test_password_hashes_verify_and_are_salted(scheme):
    h1, h2 = hash_password("s3cret", scheme), hash_password("s3cret", scheme)
    assert h1 != h2
    assert verify_password("s3cret", h1) and verify_password("s3cret", h2)
    assert not verify_password("s3cret!", h1)
    assert not verify_password("s3cret", "scrypt$bogus")


def test_password_file_roles_and_refusals():
    pw = PasswordFile(f"# guests\nalice:observer:{hash_password('a')}\n"
                      f"bob:operator:{hash_password('b', 'pbkdf2')}\n")
    assert pw.check("alice", "a") == "observer"
    assert pw.check("bob", "b") == "operator"
    assert pw.check("alice", "b") is None and pw.check("carol", "a") is None
    with pytest.raises(UserError, match="expected scrypt"):
        PasswordFile("alice:operator:plaintext\n")
    with pytest.raises(UserError, match="unknown role"):
        PasswordFile(f"alice:admin:{hash_password('a')}\n")


def test_host_key_is_generated_once_in_the_xdg_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert data_dir() == tmp_path / "devsim-tui"
    key, path = load_host_key()
    assert path == tmp_path / "devsim-tui" / "ssh_host_ed25519_key"
    assert (path.stat().st_mode & 0o777) == 0o600
    assert (path.parent.stat().st_mode & 0o777) == 0o700
    again, _ = load_host_key()
    assert pub(again) == pub(key)
    with pytest.raises(UserError):
        load_host_key(tmp_path / "missing")


def test_hash_password_helper_prints_a_line_the_server_accepts(tmp_path):
    done = subprocess.run([sys.executable, "-m", "devsim_tui", "serve", "hash-password",
                           "--user", "guest", "--role", "observer"], input="pa:ss\n",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith("guest:observer:scrypt$")
    assert PasswordFile(line).check("guest", "pa:ss") == "observer"


@pytest.mark.parametrize("option", ['Devsim-Role="observer"', "devsim_role=observer",
                                    "devsimrole=observer", "DEVSIM-ROLE=observer",
                                    "devsim-roles=observer", "role=observer"])
def test_a_misspelt_role_option_stops_the_server_at_start(three_keys, option):
    """Issue 11.3: an option that resembles devsim-role was ignored, so the key logged in as
    an operator; it must be refused naming FILE:LINE."""
    a, b = three_keys[:2]
    with pytest.raises(UserError, match=r"^keys:3: unknown option '") as err:
        AuthorizedKeys(f"# team\n{pub(a)}\n{option} {pub(b)} bob\n", "keys")
    assert "devsim-role" in str(err.value)


@pytest.mark.parametrize("options", ['devsim-role="observer",devsim-role="operator"',
                                     "devsim-role=observer,devsim-role=observer",
                                     # an escaped letter is still the same option name
                                     'devsim-rol\\e="operator",devsim-role="observer"'])
def test_a_role_option_given_twice_stops_the_server_at_start(three_keys, options):
    a = three_keys[0]
    with pytest.raises(UserError, match=r"^keys:1: devsim-role given 2 times"):
        AuthorizedKeys(f"{options} {pub(a)}\n", "keys")


def test_a_role_option_without_a_value_is_refused(three_keys):
    with pytest.raises(UserError, match=r"^keys:1: devsim-role needs a value"):
        AuthorizedKeys(f"devsim-role,no-pty {pub(three_keys[0])}\n", "keys")


def test_openssh_options_and_unrelated_ones_are_left_to_asyncssh(three_keys):
    a, b = three_keys[:2]
    keys = AuthorizedKeys(f'from="127.0.0.1",no-pty,command="x",environment="A=B" {pub(a)}\n'
                          f'restrict,devsim-role="observer",expiry-time="29991231" {pub(b)}\n')
    assert keys.role_of(a, "127.0.0.1") == "operator"
    assert keys.role_of(b, "127.0.0.1") == "observer"


def test_cli_exits_2_naming_the_line_of_a_misspelt_role(tmp_path, three_keys):
    path = tmp_path / "authorized_keys"
    path.write_text(f"{pub(three_keys[0])}\nDevsim-Role=\"observer\" {pub(three_keys[1])}\n")
    done = subprocess.run([sys.executable, "-m", "devsim_tui", "serve", "ssh", "--port", "0",
                           "--authorized-keys", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert f"{path}:2: unknown option 'Devsim-Role'" in done.stderr
    assert "Traceback" not in done.stderr
