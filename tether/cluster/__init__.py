"""The only piece that talks to the Kubernetes API: kubeconfig loading and an async dynamic
REST client (discovery, get, list, server-side apply, delete, watch)."""
