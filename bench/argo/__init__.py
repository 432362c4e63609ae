"""Argo Rollouts' controller, built from its Go module, as the peer of Tether's failed canary."""
