"""Recorded contracts (stand-ins for GitHub/GitLab, which cannot run here): request → response
pairs written from the forges' public REST documentation, and the server that replays them."""
