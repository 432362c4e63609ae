"""What the recorded GitHub and GitLab contracts were recorded with: the repository, the bad,
good and revert commits, the rollout page, and the revert change request both drivers open."""

from __future__ import annotations

from tether.forge import ChangeRequest, FileChange, RepoRef, revert_branch

REPO = RepoRef("platform", "gitops")
BAD = "9fceb02d0ae598e95dc970b74767f19372d61af8"
GOOD = "1acc419d4d6a9ce985db7be48c6349a0475975b5"
REVERT = "7638417db6d59f3c431d3e1f261cc637155684cd"
ROLLOUT = "https://tether.example.com/apps/web/rollouts/12"


def revert_request() -> ChangeRequest:
    """The change request reverting ``BAD`` that the contracts expect."""
    return ChangeRequest(
        repo=REPO,
        base="main",
        head=revert_branch(BAD),
        title=f"Revert {BAD[:12]}: canary web failed its analysis",
        body="### Canary `web` failed its analysis\n\nerror rate **7.5 %** > 1 %\n",
        start_sha=BAD,
        files=(
            FileChange("app/deploy.yaml", b"image: web:1.0\n"),
            FileChange("app/canary.yaml", None),
        ),
        commit_message=f"Revert {BAD[:12]}\n\nTether-Revert: {BAD}",
    )
