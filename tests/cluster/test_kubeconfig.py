"""kubeconfig loading: contexts, inline data, token files re-read, KUBECONFIG merged like
kubectl, relative paths, exec sections validated, in-cluster config, clear errors."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from tests.cluster.conftest import write_kubeconfig
from tether.cluster.kubeconfig import in_cluster, load
from tether.errors import ClusterError


def write(path: Path, users: list[dict], current: str = "one") -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c",
                "cluster": {
                    "server": "https://127.0.0.1:6443/",
                    "certificate-authority-data": base64.b64encode(b"CA").decode(),
                },
            }
        ],
        "users": users,
        "contexts": [
            {"name": "one", "context": {"cluster": "c", "user": "u1", "namespace": "team"}},
            {"name": "two", "context": {"cluster": "c", "user": "u2"}},
        ],
        "current-context": current,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_contexts_inline_data_and_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    path = write(
        tmp_path / "config",
        [
            {"name": "u1", "user": {"tokenFile": "token"}},
            {"name": "u2", "user": {"token": "static"}},
        ],
    )
    one = load(path)
    assert (
        one.server == "https://127.0.0.1:6443" and one.namespace == "team" and one.context == "one"
    )
    assert one.ca_file is not None and one.ca_file.read_bytes() == b"CA"
    assert one.credentials.bearer_token() == "first"
    token_file.write_text("rotated\n")
    assert one.credentials.bearer_token() == "rotated"
    two = load(path, "two")
    assert two.namespace == "default" and two.credentials.bearer_token() == "static"


def test_errors_name_the_file_and_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match=r"not found.*--kubeconfig"):
        load(tmp_path / "missing")
    path = write(tmp_path / "config", [{"name": "u1", "user": {}}, {"name": "u2", "user": {}}])
    with pytest.raises(ClusterError, match="no context named 'nope'"):
        load(path, "nope")
    (tmp_path / "bad").write_text("{unclosed")
    with pytest.raises(ClusterError, match="not valid YAML"):
        load(tmp_path / "bad")


# -- KUBECONFIG merging (kubectl's rules) -------------------------------------------------------


def test_kubeconfig_list_merges_first_definition_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write_kubeconfig(
        tmp_path / "a" / "config",
        clusters={"shared": {"server": "https://first:6443", "certificate-authority": "ca.pem"}},
        users={"shared-user": {"tokenFile": "tokens/first"}},
        contexts={"shared": {"cluster": "shared", "user": "shared-user", "namespace": "from-a"}},
    )
    second = write_kubeconfig(
        tmp_path / "b" / "config",
        clusters={
            "shared": {"server": "https://second:6443"},
            "only-b": {"server": "https://only-b:6443", "certificate-authority": "ca.pem"},
        },
        users={"shared-user": {"token": "from-b"}, "b-user": {"tokenFile": "tokens/b"}},
        contexts={
            "shared": {"cluster": "only-b", "user": "b-user"},
            "b": {"cluster": "only-b", "user": "shared-user"},
        },
        current="shared",
    )
    third = write_kubeconfig(tmp_path / "c" / "config", current="b")
    (tmp_path / "a" / "tokens").mkdir()
    (tmp_path / "a" / "tokens" / "first").write_text("token-from-a\n")
    listed = [first, tmp_path / "missing" / "config", second, third]
    monkeypatch.setenv("KUBECONFIG", ":".join(str(path) for path in listed))

    # The first current-context set (b's; a sets none) wins over c's, and the first file to
    # define each name wins: context "shared" and cluster "shared" come from a.
    connection = load()
    assert connection.context == "shared"
    assert connection.server == "https://first:6443"
    assert connection.namespace == "from-a"
    # Relative paths resolve against the file they were written in.
    assert connection.ca_file == tmp_path / "a" / "ca.pem"
    assert connection.credentials.token_file == tmp_path / "a" / "tokens" / "first"
    assert connection.credentials.bearer_token() == "token-from-a"
    # A context from b that names a user from a gets a's definition of that user.
    other = load(context="b")
    assert other.server == "https://only-b:6443"
    assert other.ca_file == tmp_path / "b" / "ca.pem"
    assert other.credentials.token_file == tmp_path / "a" / "tokens" / "first"


def test_explicit_kubeconfig_is_not_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = write_kubeconfig(
        tmp_path / "env",
        clusters={"c": {"server": "https://env:6443"}},
        contexts={"env": {"cluster": "c"}},
        current="env",
    )
    monkeypatch.setenv("KUBECONFIG", str(elsewhere))
    alone = write_kubeconfig(
        tmp_path / "alone",
        clusters={"c": {"server": "https://alone:6443"}},
        contexts={"mine": {"cluster": "c"}},
        current="mine",
    )
    assert load(alone).server == "https://alone:6443"
    with pytest.raises(ClusterError, match="no context named 'env'"):
        load(alone, "env")


def test_kubeconfig_list_with_no_file_names_them_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'one'}:{tmp_path / 'two'}")
    with pytest.raises(ClusterError, match=r"kubeconfig .*one:.*two not found.*--kubeconfig"):
        load()


def test_relative_exec_command_resolves_against_its_kubeconfig(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path / "conf" / "config",
        clusters={"c": {"server": "https://[::1]:6443"}},
        users={
            "u": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": "./bin/plugin",
                    "args": ["get-token"],
                }
            },
            "on-path": {
                "exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "plugin"}
            },
        },
        contexts={
            "ctx": {"cluster": "c", "user": "u"},
            "path": {"cluster": "c", "user": "on-path"},
        },
        current="ctx",
    )
    connection = load(path)
    assert connection.server == "https://[::1]:6443"
    plugin = connection.credentials.exec_plugin
    assert plugin is not None and plugin.spec.command == str(tmp_path / "conf" / "bin" / "plugin")
    assert plugin.spec.args == ("get-token",)
    on_path = load(path, "path").credentials.exec_plugin
    assert on_path is not None and on_path.spec.command == "plugin"


@pytest.mark.parametrize(
    ("exec_section", "message"),
    [
        ({"apiVersion": "client.authentication.k8s.io/v1"}, "user 'u' exec needs a command"),
        (
            {"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "x"},
            "apiVersion 'client.authentication.k8s.io/v1alpha1' is not supported",
        ),
        (
            {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "x",
                "interactiveMode": "Sometimes",
            },
            "interactiveMode 'Sometimes' is not one of",
        ),
        (
            {"apiVersion": "client.authentication.k8s.io/v1", "command": "x", "env": [{"a": 1}]},
            "every env entry needs a name and a value",
        ),
    ],
)
def test_bad_exec_sections_are_named(tmp_path: Path, exec_section: dict, message: str) -> None:
    path = write_kubeconfig(
        tmp_path / "config",
        clusters={"c": {"server": "https://127.0.0.1:6443"}},
        users={"u": {"exec": exec_section}},
        contexts={"ctx": {"cluster": "c", "user": "u"}},
        current="ctx",
    )
    with pytest.raises(ClusterError, match=message) as raised:
        load(path)
    assert str(path) in str(raised.value)


# -- in a Pod -----------------------------------------------------------------------------------


def test_in_cluster_reads_the_given_directory_and_brackets_ipv6(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token\n")
    (tmp_path / "ca.crt").write_text("CA")
    (tmp_path / "namespace").write_text("team-a\n")
    v4 = in_cluster(
        tmp_path, {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    )
    assert v4.server == "https://10.96.0.1:443" and v4.namespace == "team-a"
    assert v4.ca_file == tmp_path / "ca.crt" and v4.credentials.bearer_token() == "sa-token"
    v6 = in_cluster(
        tmp_path, {"KUBERNETES_SERVICE_HOST": "fd00:10:96::1", "KUBERNETES_SERVICE_PORT": "6443"}
    )
    assert v6.server == "https://[fd00:10:96::1]:6443"
    with pytest.raises(ClusterError, match="not running in a Pod"):
        in_cluster(tmp_path, {"KUBERNETES_SERVICE_HOST": "10.96.0.1"})
    with pytest.raises(ClusterError, match=r"no service account token at .*nowhere/token"):
        in_cluster(
            tmp_path / "nowhere",
            {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"},
        )
    (tmp_path / "token").unlink()
    with pytest.raises(ClusterError, match=r"cannot read the bearer token file .*token"):
        v4.credentials.bearer_token()
