"""Fixtures of the security tests: the agent's (``start_agent`` runs a Tether agent process,
``tether_crds`` installs the Tether CRDs), shared from tests/agent/conftest.py once for every
file here."""

from __future__ import annotations

from tests.agent.conftest import start_agent, tether_crds

__all__ = ["start_agent", "tether_crds"]
