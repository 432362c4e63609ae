"""The Gitea driver against a real Gitea: change requests (branch + files + pull request),
idempotency, comments, commit statuses, merge state, and a forge that is down or slow."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.forge.conftest import QUICK, ForgeRepo, LoopbackProxy, make_forge
from tether.devcluster.gitea import LocalGitea
from tether.errors import ForgeError, ForgeUnreachable
from tether.forge import (
    ChangeRequest,
    CommitState,
    CommitStatus,
    FileChange,
    ForgeSettings,
    PullState,
    RepoRef,
    StaticToken,
)
from tether.forge.gitea import GiteaForge

GOOD = "image: web:1.0\n"
BAD = "image: web:2.0\n"
EVIDENCE = """### Canary `web` failed its analysis

| metric | limit | measured |
|---|---|---|
| error rate | < 1 % | **7.5 %** |

Stable `web:1.0` was restored at step 2 of 4.
"""


def _revert_of(repo: ForgeRepo, bad: str) -> ChangeRequest:
    return ChangeRequest(
        repo=repo.ref,
        base="main",
        head=f"tether/revert-{bad[:12]}",
        title=f"Revert {bad[:12]}: canary web failed its analysis",
        body=EVIDENCE,
        start_sha=bad,
        files=(FileChange("app/deploy.yaml", GOOD.encode()), FileChange("app/canary.yaml", None)),
        commit_message=f"Revert {bad[:12]}\n\nTether-Revert: {bad}",
    )


def _good_then_bad(repo: ForgeRepo) -> tuple[str, str]:
    good = repo.commit({"app/deploy.yaml": GOOD}, "web 1.0")
    bad = repo.commit({"app/deploy.yaml": BAD, "app/canary.yaml": "steps: 4\n"}, "web 2.0")
    repo.push()
    return good, bad


def test_a_revert_opens_a_branch_with_the_files_and_a_pull_request_with_the_evidence(
    forge_repo: ForgeRepo,
) -> None:
    good, bad = _good_then_bad(forge_repo)

    async def scenario() -> None:
        async with make_forge(forge_repo.gitea.url, forge_repo.gitea.admin.token) as forge:
            pull = await forge.open_change(_revert_of(forge_repo, bad))
            assert pull.state is PullState.OPEN
            assert (pull.head, pull.base, pull.merge_commit) == (
                f"tether/revert-{bad[:12]}",
                "main",
                None,
            )
            assert pull.url.endswith(f"/{forge_repo.ref}/pulls/{pull.number}")

    asyncio.run(scenario())

    branch_head = forge_repo.fetch(f"tether/revert-{bad[:12]}")
    assert forge_repo.git("rev-parse", f"{branch_head}^") == bad
    assert forge_repo.git("show", f"{branch_head}:app/deploy.yaml") + "\n" == GOOD
    assert "app/canary.yaml" not in forge_repo.git("ls-tree", "-r", "--name-only", branch_head)
    assert forge_repo.git("diff", "--stat", good, branch_head) == ""
    assert "Tether-Revert: " + bad in forge_repo.git("log", "-1", "--format=%B", branch_head)
    listed = forge_repo.get("/pulls?state=all").json()
    assert [(item["head"]["ref"], item["body"]) for item in listed] == [
        (f"tether/revert-{bad[:12]}", EVIDENCE)
    ]


def test_opening_the_same_revert_again_finds_the_pull_request_and_commits_nothing_twice(
    forge_repo: ForgeRepo,
) -> None:
    _, bad = _good_then_bad(forge_repo)
    request = _revert_of(forge_repo, bad)

    async def scenario() -> tuple[int, int, list[int]]:
        async with make_forge(forge_repo.gitea.url, forge_repo.gitea.admin.token) as forge:
            first = await forge.open_change(request)
            second = await forge.open_change(request)
            found = await forge.find_pull_requests(forge_repo.ref, request.head)
            return first.number, second.number, [pull.number for pull in found]

    first, second, found = asyncio.run(scenario())
    assert second == first
    assert found == [first]
    branch_head = forge_repo.fetch(request.head)
    assert forge_repo.git("rev-list", "--count", f"{bad}..{branch_head}") == "1"
    assert len(forge_repo.get("/pulls?state=all").json()) == 1


def test_a_branch_pushed_with_git_just_before_gets_its_pull_request(
    forge_repo: ForgeRepo,
) -> None:
    """The case once seen to lose the pull request: created right after the push."""
    _, bad = _good_then_bad(forge_repo)
    forge_repo.git("checkout", "-q", "-b", "fix/web")
    fix = forge_repo.commit({"app/deploy.yaml": "image: web:2.1\n"}, "web 2.1")
    forge_repo.push("fix/web")
    request = ChangeRequest(forge_repo.ref, "main", "fix/web", "web 2.1", "Fixes the canary.")

    async def scenario() -> int:
        async with make_forge(forge_repo.gitea.url, forge_repo.gitea.admin.token) as forge:
            pull = await forge.open_change(request)
            assert pull.head_sha == fix
            return pull.number

    number = asyncio.run(scenario())
    assert forge_repo.get(f"/pulls/{number}").json()["head"]["sha"] == fix
    assert forge_repo.fetch("fix/web") == fix  # nothing was committed on top of the push
    assert bad != fix


def test_a_missing_branch_without_a_start_commit_is_refused_clearly(
    forge_repo: ForgeRepo,
) -> None:
    _good_then_bad(forge_repo)
    request = ChangeRequest(forge_repo.ref, "main", "nowhere", "t", "b")

    async def scenario() -> None:
        async with make_forge(forge_repo.gitea.url, forge_repo.gitea.admin.token) as forge:
            await forge.open_change(request)

    with pytest.raises(ForgeError, match="branch nowhere does not exist") as caught:
        asyncio.run(scenario())
    assert not isinstance(caught.value, ForgeUnreachable)


def test_a_keyed_comment_is_posted_once_and_plain_comments_each_time(
    forge_repo: ForgeRepo,
) -> None:
    _, bad = _good_then_bad(forge_repo)

    async def scenario() -> tuple[int, int, int]:
        async with make_forge(forge_repo.gitea.url, forge_repo.gitea.admin.token) as forge:
            pull = await forge.open_change(_revert_of(forge_repo, bad))
            first = await forge.comment(
                pull.repo, pull.number, "Analysis run 2 failed", key="run-2"
            )
            again = await forge.comment(
                pull.repo, pull.number, "Analysis run 2 failed", key="run-2"
            )
            await forge.comment(pull.repo, pull.number, "A person asked for a retry")
            assert first.url.startswith(forge_repo.gitea.url)
            return pull.number, first.id, again.id

    number, first, again = asyncio.run(scenario())
    assert again == first
    bodies = [item["body"] for item in forge_repo.get(f"/issues/{number}/comments").json()]
    assert len(bodies) == 2
    assert bodies[0].startswith("Analysis run 2 failed")
    assert bodies[1] == "A person asked for a retry"


def test_a_keyed_comment_asked_for_with_new_text_is_edited_in_place(
    forge_repo: ForgeRepo,
) -> None:
    _, bad = _good_then_bad(forge_repo)

    async def scenario() -> tuple[int, int, int]:
        async with make_forge(forge_repo.gitea.url, forge_repo.gitea.admin.token) as forge:
            pull = await forge.open_change(_revert_of(forge_repo, bad))
            first = await forge.comment(pull.repo, pull.number, "Error rate 3 %", key="rate")
            edited = await forge.comment(pull.repo, pull.number, "Error rate 7.5 %", key="rate")
            return pull.number, first.id, edited.id

    number, first, edited = asyncio.run(scenario())
    assert edited == first
    bodies = [item["body"] for item in forge_repo.get(f"/issues/{number}/comments").json()]
    assert len(bodies) == 1
    assert bodies[0].startswith("Error rate 7.5 %")
    assert "<!-- tether-key: rate -->" in bodies[0]


def test_commit_statuses_are_set_and_the_latest_per_context_is_read_back(
    forge_repo: ForgeRepo,
) -> None:
    _, bad = _good_then_bad(forge_repo)
    target = "http://127.0.0.1:9/rollouts/web"

    async def scenario() -> list[CommitStatus]:
        async with make_forge(forge_repo.gitea.url, forge_repo.gitea.admin.token) as forge:
            analysis = "tether/analysis"
            await forge.set_commit_status(
                forge_repo.ref, bad, CommitStatus(CommitState.PENDING, analysis, "canary at 20 %")
            )
            await forge.set_commit_status(
                forge_repo.ref,
                bad,
                CommitStatus(CommitState.FAILURE, analysis, "error rate 7.5 % > 1 %", target),
            )
            await forge.set_commit_status(
                forge_repo.ref, bad, CommitStatus(CommitState.SUCCESS, "tether/render", "rendered")
            )
            return await forge.commit_statuses(forge_repo.ref, bad)

    statuses = asyncio.run(scenario())
    assert sorted(statuses, key=lambda status: status.context) == [
        CommitStatus(CommitState.FAILURE, "tether/analysis", "error rate 7.5 % > 1 %", target),
        CommitStatus(CommitState.SUCCESS, "tether/render", "rendered", ""),
    ]
    combined = forge_repo.get(f"/commits/{bad}/status").json()
    assert combined["state"] == "failure"


def test_a_merged_pull_request_reports_its_merge_commit_and_a_closed_one_is_closed(
    forge_repo: ForgeRepo,
) -> None:
    _, bad = _good_then_bad(forge_repo)
    forge_repo.git("checkout", "-q", "-b", "abandoned")
    forge_repo.commit({"notes.txt": "maybe\n"}, "an idea")
    forge_repo.push("abandoned")

    async def open_both() -> tuple[int, int]:
        async with make_forge(forge_repo.gitea.url, forge_repo.gitea.admin.token) as forge:
            revert = await forge.open_change(_revert_of(forge_repo, bad))
            idea = await forge.open_change(
                ChangeRequest(forge_repo.ref, "main", "abandoned", "An idea", "")
            )
            return revert.number, idea.number

    revert, idea = asyncio.run(open_both())
    forge_repo.merge(revert)
    httpx.patch(
        f"{forge_repo.api}/pulls/{idea}",
        json={"state": "closed"},
        headers=forge_repo.gitea_headers,
        timeout=30,
    ).raise_for_status()

    async def read_both() -> tuple[PullState, str | None, PullState, str | None]:
        async with make_forge(forge_repo.gitea.url, forge_repo.gitea.admin.token) as forge:
            merged = await forge.pull_request(forge_repo.ref, revert)
            dropped = await forge.pull_request(forge_repo.ref, idea)
            return merged.state, merged.merge_commit, dropped.state, dropped.merge_commit

    merged_state, merge_commit, dropped_state, dropped_commit = asyncio.run(read_both())
    assert merged_state is PullState.MERGED
    assert merge_commit == forge_repo.fetch("main")
    assert (dropped_state, dropped_commit) == (PullState.CLOSED, None)


def test_a_stopped_forge_raises_unreachable_and_nothing_is_half_done(
    gitea: LocalGitea, forge_repo: ForgeRepo
) -> None:
    _, bad = _good_then_bad(forge_repo)
    request = _revert_of(forge_repo, bad)
    token = gitea.admin.token

    async def while_down() -> list[ForgeUnreachable]:
        errors: list[ForgeUnreachable] = []
        async with make_forge(gitea.url, token) as forge:
            for call in (
                forge.open_change(request),
                forge.set_commit_status(
                    forge_repo.ref, bad, CommitStatus(CommitState.FAILURE, "tether/analysis")
                ),
                forge.comment(forge_repo.ref, 1, "never posted", key="k"),
            ):
                with pytest.raises(ForgeUnreachable) as caught:
                    await call
                errors.append(caught.value)
        return errors

    gitea.stop()
    try:
        errors = asyncio.run(while_down())
    finally:
        gitea.start()

    for error in errors:
        assert gitea.url in str(error)
        assert "retried later" in str(error)
        assert token not in str(error)
        assert error.status is None
    assert forge_repo.get(f"/branches/{request.head}").status_code == 404
    assert forge_repo.get("/pulls?state=all").json() == []
    assert forge_repo.get(f"/commits/{bad}/statuses").json() == []

    async def once_back() -> PullState:
        async with make_forge(gitea.url, token) as forge:
            return (await forge.open_change(request)).state

    assert asyncio.run(once_back()) is PullState.OPEN


def test_a_forge_that_stalls_is_given_up_on_after_a_bounded_number_of_attempts(
    gitea: LocalGitea, forge_repo: ForgeRepo
) -> None:
    _, bad = _good_then_bad(forge_repo)
    settings = ForgeSettings(attempt_timeout=0.5, attempts=3, backoff=0.05)

    async def scenario() -> tuple[ForgeUnreachable, int, int]:
        async with LoopbackProxy(gitea.port, delay=0.05) as prompt:
            forge = make_forge(prompt.url, gitea.admin.token, settings)
            async with forge:
                statuses = await forge.commit_statuses(forge_repo.ref, bad)
                assert statuses == []  # through the proxy, a prompt forge answers
        async with LoopbackProxy(gitea.port, delay=3600) as stalled:
            forge = make_forge(stalled.url, gitea.admin.token, settings)
            async with forge:
                with pytest.raises(ForgeUnreachable) as caught:
                    await forge.commit_statuses(forge_repo.ref, bad)
            return caught.value, stalled.connections, prompt.connections

    error, stalled_connections, prompt_connections = asyncio.run(scenario())
    assert stalled_connections == settings.attempts
    assert prompt_connections == 1
    assert "no complete answer within 0.5s" in str(error)
    assert "tried 3 times" in str(error)


def test_a_write_that_may_have_happened_is_not_repeated_blindly(
    gitea: LocalGitea, forge_repo: ForgeRepo
) -> None:
    """A comment POST that timed out may have been posted: it is tried once, not three times."""
    settings = ForgeSettings(attempt_timeout=0.5, attempts=3, backoff=0.05)

    async def scenario() -> int:
        async with LoopbackProxy(gitea.port, delay=3600) as stalled:
            forge = make_forge(stalled.url, gitea.admin.token, settings)
            async with forge:
                with pytest.raises(ForgeUnreachable, match="tried once"):
                    await forge.comment(forge_repo.ref, 1, "maybe posted")
            return stalled.connections

    assert asyncio.run(scenario()) == 1


def test_5xx_answers_are_retried_with_backoff_until_the_forge_answers(
    gitea: LocalGitea, forge_repo: ForgeRepo
) -> None:
    _, bad = _good_then_bad(forge_repo)
    pauses: list[float] = []

    async def record(seconds: float) -> None:
        pauses.append(seconds)

    async def scenario() -> int:
        async with LoopbackProxy(gitea.port, fail_first=2) as flaky:
            forge = GiteaForge(
                flaky.url,
                StaticToken(gitea.admin.token),
                ForgeSettings(attempts=4, backoff=0.5),
                sleep=record,
            )
            async with forge:
                await forge.set_commit_status(
                    forge_repo.ref, bad, CommitStatus(CommitState.ERROR, "tether/analysis")
                )
            return flaky.connections

    assert asyncio.run(scenario()) == 3
    assert pauses == [0.5, 1.0]
    statuses = forge_repo.get(f"/commits/{bad}/statuses").json()
    assert [(item["status"], item["context"]) for item in statuses] == [
        ("error", "tether/analysis")
    ]


def test_a_wrong_token_is_refused_and_never_shown(gitea: LocalGitea, forge_repo: ForgeRepo) -> None:
    secret = "0123456789abcdef-not-a-real-token"

    async def scenario() -> None:
        async with make_forge(gitea.url, secret) as forge:
            await forge.find_pull_requests(forge_repo.ref, "main")

    with pytest.raises(ForgeError) as caught:
        asyncio.run(scenario())
    assert not isinstance(caught.value, ForgeUnreachable)
    assert caught.value.status == 401
    assert "token was refused" in str(caught.value)
    assert secret not in str(caught.value)


def test_the_token_is_asked_for_on_every_request(gitea: LocalGitea, forge_repo: ForgeRepo) -> None:
    """A rotated token is used by the next request, without a new client."""

    class Rotating:
        def __init__(self) -> None:
            self.tokens = ["expired-token", gitea.admin.token]
            self.asked = 0

        def current(self) -> tuple[str, str]:
            self.asked += 1
            return "tether", self.tokens[0]

    provider = Rotating()
    _good_then_bad(forge_repo)

    async def scenario() -> None:
        async with GiteaForge(gitea.url, provider, QUICK) as forge:
            with pytest.raises(ForgeError) as caught:
                await forge.find_pull_requests(forge_repo.ref, "main")
            assert caught.value.status == 401
            provider.tokens.pop(0)
            assert await forge.find_pull_requests(forge_repo.ref, "main") == []

    asyncio.run(scenario())
    assert provider.asked >= 2


def test_an_empty_repository_has_no_pull_requests_and_a_missing_one_is_an_error(
    gitea: LocalGitea, forge_repo: ForgeRepo
) -> None:
    async def scenario() -> list[object]:
        async with make_forge(gitea.url, gitea.admin.token) as forge:
            empty = await forge.find_pull_requests(forge_repo.ref, "main")
            with pytest.raises(ForgeError) as caught:
                await forge.find_pull_requests(RepoRef("tether-admin", "no-such-repo"), "main")
            return [empty, caught.value]

    empty, error = asyncio.run(scenario())
    assert empty == []
    assert isinstance(error, ForgeError)
    assert error.status == 404
    assert "no-such-repo" in str(error)


def test_a_commit_the_forge_never_sees_is_an_error_once_settling_time_is_over(
    gitea: LocalGitea, forge_repo: ForgeRepo
) -> None:
    _good_then_bad(forge_repo)
    unknown = forge_repo.commit({"app/deploy.yaml": "image: web:3.0\n"}, "never pushed")
    settings = ForgeSettings(backoff=0.05, max_backoff=0.1, settle_seconds=0.3)

    async def scenario() -> None:
        async with make_forge(gitea.url, gitea.admin.token, settings) as forge:
            await forge.set_commit_status(
                forge_repo.ref, unknown, CommitStatus(CommitState.FAILURE, "tether/analysis")
            )

    with pytest.raises(ForgeError, match=f"does not know commit {unknown[:12]}") as caught:
        asyncio.run(scenario())
    assert not isinstance(caught.value, ForgeUnreachable)


def test_a_forge_answering_only_5xx_is_unreachable_with_its_status(
    gitea: LocalGitea, forge_repo: ForgeRepo
) -> None:
    _, bad = _good_then_bad(forge_repo)

    async def scenario() -> tuple[ForgeUnreachable, int]:
        async with LoopbackProxy(gitea.port, fail_first=100) as failing:
            forge = make_forge(failing.url, gitea.admin.token)
            async with forge:
                with pytest.raises(ForgeUnreachable) as caught:
                    await forge.commit_statuses(forge_repo.ref, bad)
            return caught.value, failing.connections

    error, connections = asyncio.run(scenario())
    assert connections == QUICK.attempts
    assert error.status == 503
    assert "HTTP 503" in str(error)


def test_a_token_with_only_the_documented_scopes_is_enough(
    gitea: LocalGitea, forge_repo: ForgeRepo
) -> None:
    """docs/forge.md says write:repository and write:issue suffice: check it."""
    _, bad = _good_then_bad(forge_repo)
    admin = gitea.admin
    response = httpx.post(
        f"{gitea.url}/api/v1/users/{admin.username}/tokens",
        json={"name": f"narrow-{bad[:8]}", "scopes": ["write:repository", "write:issue"]},
        auth=(admin.username, admin.password),
        timeout=30,
    )
    assert response.status_code == 201, response.text
    narrow = response.json()["sha1"]

    async def scenario() -> tuple[PullState, list[CommitStatus]]:
        async with make_forge(gitea.url, narrow) as forge:
            pull = await forge.open_change(_revert_of(forge_repo, bad))
            await forge.comment(pull.repo, pull.number, "evidence attached", key="evidence")
            failing = CommitStatus(CommitState.FAILURE, "tether/analysis", "failed")
            await forge.set_commit_status(forge_repo.ref, bad, failing)
            return pull.state, await forge.commit_statuses(forge_repo.ref, bad)

    state, statuses = asyncio.run(scenario())
    assert state is PullState.OPEN
    assert statuses == [CommitStatus(CommitState.FAILURE, "tether/analysis", "failed")]
