"""The catalogue of every rule ``tether lint`` checks: id, summary, fix hint, default severity.

Rule ids are stable (CI annotations, SARIF and allowlist entries refer to them); the families
group them in docs/lint.md.
"""

from __future__ import annotations

from tether.policy.findings import Rule, Severity

E, W, N = Severity.ERROR, Severity.WARNING, Severity.NOTE

_RULES = (
    # -- configuration ------------------------------------------------------------------------
    Rule(
        "config-missing",
        "the repository has no tether.yaml",
        "run `tether init` (or write tether.yaml by hand) so environments, teams and apps are "
        "declared; lint guessed them from the directories",
        W,
        "config",
    ),
    Rule(
        "codeowners-mismatch",
        "CODEOWNERS does not match the teams in tether.yaml",
        "regenerate it with `tether init --codeowners-only` (tether.yaml is the source of truth)",
        W,
        "config",
    ),
    # -- layout -------------------------------------------------------------------------------
    Rule(
        "layout-unknown-top-level",
        "a top-level file or directory the layout does not know",
        "move it under platform/, apps/ or clusters/, or list it in tether.yaml "
        "layout.allowedTopLevel",
        E,
        "layout",
    ),
    Rule(
        "layout-manifest-outside",
        "Kubernetes manifests outside platform/, apps/ and clusters/",
        "move the file into the app or platform directory that deploys it",
        E,
        "layout",
    ),
    Rule(
        "layout-misplaced",
        "a file where the layout has no place for it",
        "apps/<app>/ and platform/ hold only base/ and overlays/<environment>/; clusters/ holds "
        "one directory per cluster",
        E,
        "layout",
    ),
    Rule(
        "layout-undeclared",
        "an app, environment or cluster directory tether.yaml does not declare",
        "declare it in tether.yaml (apps, environments, clusters) or rename the directory",
        E,
        "layout",
    ),
    Rule(
        "layout-symlink-outside",
        "a symlink whose target lies outside the repository",
        "commit the file itself instead of a link to it (lint does not follow the link, and a "
        "render refuses it)",
        E,
        "layout",
    ),
    Rule(
        "layout-missing-kustomization",
        "a base, overlay or cluster directory without a kustomization",
        "add a kustomization.yaml listing its resources",
        E,
        "layout",
    ),
    Rule(
        "naming-dns1123",
        "a name that Kubernetes would refuse (DNS-1123)",
        "use lowercase letters, digits and '-' (and '.' where allowed), starting and ending with "
        "a letter or digit",
        E,
        "naming",
    ),
    Rule(
        "naming-pattern",
        "a name that does not follow the naming rules of tether.yaml",
        "rename the object to follow the pattern (tether.yaml naming.rules)",
        E,
        "naming",
    ),
    # -- objects ------------------------------------------------------------------------------
    Rule(
        "render-failed",
        "an overlay, a cluster directory or a chart App does not render",
        "fix the problems listed (run `kustomize build` on the directory, or `tether diff` with "
        "the App's chart, to reproduce)",
        E,
        "render",
    ),
    Rule(
        "chart-values-invalid",
        "a chart App's values do not fit the chart's values.schema.json",
        "fix the value in the values file named (Helm refuses these values, so nothing renders)",
        E,
        "render",
    ),
    Rule(
        "chart-skipped",
        "a chart App lint cannot render offline (a chart fetched over the network, or not in "
        "this repository)",
        "run `tether diff` with the App's chart options to render it against a cluster",
        N,
        "render",
    ),
    Rule(
        "schema-invalid",
        "an object the Kubernetes API would refuse (OpenAPI schema)",
        "fix the field named; `kubectl explain <kind>.<field>` shows what is expected",
        E,
        "schema",
    ),
    Rule(
        "schema-unavailable",
        "objects not validated: no schemas cached for this Kubernetes version",
        "run `tether lint --update-schemas` once (it reads them from the dev cluster)",
        N,
        "schema",
    ),
    Rule(
        "schema-unknown-kind",
        "a kind with no schema (neither built in nor a CustomResourceDefinition in the repository)",
        "add the CustomResourceDefinition to the repository, or check the apiVersion and kind",
        N,
        "schema",
    ),
    Rule(
        "analysis-template-invalid",
        "an AnalysisTemplate a rollout could not run (read as the agent reads it)",
        "fix the field named; docs/analysis.md lists what a template may hold",
        E,
        "schema",
    ),
    Rule(
        "dry-run-rejected",
        "the cluster refused the object in a server-side dry-run",
        "fix what the API server names",
        E,
        "schema",
    ),
    Rule(
        "duplicate-object",
        "the same object is defined by two apps (or an app and the platform)",
        "keep the object in one place: shared objects belong to platform/",
        E,
        "tenancy",
    ),
    Rule(
        "namespace-outside-app",
        "an app writes into a namespace it does not own",
        "use one of the app's namespaces (tether.yaml apps[].namespaces or its team's)",
        E,
        "tenancy",
    ),
    Rule(
        "app-cluster-scoped",
        "an app defines a cluster-scoped object",
        "cluster-scoped objects affect every tenant: move it to platform/",
        W,
        "tenancy",
    ),
    # -- secrets ------------------------------------------------------------------------------
    Rule(
        "secret-cleartext",
        "a Secret whose values are not SOPS-encrypted",
        "encrypt it with `sops --encrypt --in-place <file>` (values become ENC[…]) and rotate "
        "the secret: it is in Git history",
        E,
        "secrets",
    ),
    Rule(
        "secret-private-key",
        "a private key",
        "remove it, rotate the key, and keep it in a SOPS-encrypted Secret",
        E,
        "secrets",
    ),
    Rule(
        "secret-token",
        "a token of a well-known shape (GitHub, AWS, Slack, Google, JWT)",
        "revoke the token, remove it, and keep the new one in a SOPS-encrypted Secret",
        E,
        "secrets",
    ),
    Rule(
        "secret-generic",
        "a password, token or key set to a literal value",
        "reference a Secret (valueFrom.secretKeyRef) or encrypt the file with SOPS; if the value "
        "is not secret, add an allowlist entry to tether.yaml",
        E,
        "secrets",
    ),
    Rule(
        "secret-high-entropy",
        "a long random-looking string that may be a secret",
        "if it is a secret, encrypt it with SOPS and rotate it; if not, add an allowlist entry "
        "(fingerprint or path+rule) to tether.yaml",
        W,
        "secrets",
    ),
    # -- environments -------------------------------------------------------------------------
    Rule(
        "image-latest",
        "an image with the `latest` tag in an environment that forbids it",
        "pin a version tag or a digest (kustomize `images:` newTag/digest in the overlay)",
        E,
        "environments",
    ),
    Rule(
        "image-unpinned",
        "an image without a tag or digest (or without a digest where one is required)",
        "pin a version tag or a digest (kustomize `images:` newTag/digest in the overlay)",
        E,
        "environments",
    ),
    # -- changes ------------------------------------------------------------------------------
    Rule(
        "change-mixes-layers",
        "a change touches both the platform layer and the app layer",
        "split it: land the platform change first, then the app change",
        E,
        "changes",
    ),
    Rule(
        "change-multiple-environments",
        "a change touches several environments at once",
        "change one environment per change and promote in order (dev → stage → prod)",
        E,
        "changes",
    ),
    Rule(
        "change-multiple-teams",
        "a change touches files owned by more than one team",
        "split it per team, or get every owning team's review",
        W,
        "changes",
    ),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}


def rule(rule_id: str) -> Rule:
    return RULES[rule_id]
