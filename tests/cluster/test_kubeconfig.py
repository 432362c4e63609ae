"""kubeconfig loading: contexts, inline data, token files re-read, clear errors."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from tether.cluster.kubeconfig import load
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
