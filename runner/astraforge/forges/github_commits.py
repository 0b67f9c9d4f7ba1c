"""Fix commits written through GitHub's Git Data API, so that GitHub signs them.

GitHub signs a commit created through its API, and shows it as verified, when the request is
authenticated as the app or bot (the workflow's token) and names no author, committer or
signature of its own. So the commit's author and committer are the token's account; the
configured author is kept as a ``Co-authored-by:`` trailer, and AstraForge's own trailers stay.

The commit is built locally first (the patch applied in a :class:`WorkRepo`); only the
entries that differ from the parent's tree go to GitHub: a text file inline in the tree
request, anything else (binary, large) as a blob first. GitHub's tree must have the local
tree's id, or nothing is committed: the bytes, modes and symlinks are exactly the patch's.

The branch is then moved with GraphQL ``updateRefs``, whose ``beforeOid`` makes the update
conditional on the tip the run saw (REST's ``PATCH git/refs`` has no such condition), so a
concurrent writer is never overwritten. A GitHub without ``updateRefs`` (an older GHES) is
:class:`~astraforge.branches.Unsupported`, and ``publish.commit: auto`` then pushes with git.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from astraforge.branches import Author, Unsupported, WorkRepo, Written
from astraforge.errors import AstraForgeError

# The forge's error mapping: ``call(what, needs)`` turns PyGithub's errors into ForgeError.
Call = Callable[[str, str], AbstractContextManager[None]]

ZERO = "0" * 40
INLINE = 512 * 1024  # a UTF-8 file up to this size travels inside the tree request
UPDATE_REFS = """
mutation AstraForgeUpdateRef($input: UpdateRefsInput!) {
  updateRefs(input: $input) { clientMutationId }
}
"""
_NO_UPDATE_REFS = ("doesn't exist on type", "undefinedField", "UpdateRefsInput")


def co_author(message: str, author: Author) -> str:
    """``message`` with a ``Co-authored-by:`` trailer for ``author`` (once)."""
    line = f"Co-authored-by: {author.name} <{author.email}>"
    if line in message.splitlines():
        return message
    return message.rstrip("\n") + "\n" + line + "\n"


class GitDataWriter:
    """Writes a commit through the Git Data API and ``updateRefs`` (a :class:`Writer`)."""

    how = "api"

    def __init__(self, repo: Any, call: Call, author: Author | None = None) -> None:
        self.repo = repo  # PyGithub's Repository
        self.call = call
        self.author = author

    def _request(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.call(f"write {path.lstrip('/')} through the Git Data API", "contents: write"):
            url = f"{self.repo.url}{path}"
            _, data = self.repo.requester.requestJsonAndCheck(method, url, input=body)
        return dict(data)

    def _entries(self, work: WorkRepo, parent_tree: str, tree: str) -> list[dict[str, Any]]:
        """The tree entries that turn ``parent_tree`` into ``tree``: path, mode, type and
        a blob's sha or inline content; ``sha: None`` deletes."""
        out = work.git("diff-tree", "-r", "-z", "--no-renames", parent_tree, tree)
        fields = out.split("\0")
        entries = []
        for meta, path in zip(fields[0::2], fields[1::2], strict=False):
            old_mode, new_mode, old_sha, new_sha, status = meta.lstrip(":").split()
            if status == "D":
                kind = "commit" if old_mode == "160000" else "blob"
                entries.append({"path": path, "mode": old_mode, "type": kind, "sha": None})
                continue
            entry: dict[str, Any] = {"path": path, "mode": new_mode, "type": "blob"}
            if new_mode == "160000":
                entry.update(type="commit", sha=new_sha)
            elif new_sha == old_sha:  # only the mode changed: GitHub has the blob
                entry["sha"] = new_sha
            else:
                entry.update(self._blob(work, new_sha))
            entries.append(entry)
        return entries

    def _blob(self, work: WorkRepo, sha: str) -> dict[str, Any]:
        data = work.blob(sha)
        if len(data) <= INLINE:
            try:
                return {"content": data.decode("utf-8")}
            except UnicodeDecodeError:
                pass
        body = {"content": base64.b64encode(data).decode(), "encoding": "base64"}
        created = self._request("POST", "/git/blobs", body)
        if created.get("sha") != sha:
            raise _mismatch("blob", sha, created.get("sha"))
        return {"sha": sha}

    def write(self, work: WorkRepo, branch: str, commit: str, expect: str | None) -> Written:
        """Recreate ``commit`` on GitHub (same tree and parents, GitHub's signature) and
        move ``branch`` to it if the branch is still at ``expect``."""
        tree, parents, message = work.describe(commit)
        parent_tree = work.git("rev-parse", f"{parents[0]}^{{tree}}").strip()
        body: dict[str, Any] = {"base_tree": parent_tree}
        body["tree"] = self._entries(work, parent_tree, tree)
        made = self._request("POST", "/git/trees", body)
        if made.get("sha") != tree:
            raise _mismatch("tree", tree, made.get("sha"))
        if self.author is not None:
            message = co_author(message, self.author)
        created = self._request(
            "POST", "/git/commits", {"message": message, "tree": tree, "parents": parents}
        )
        sha = str(created["sha"])
        verification = created.get("verification") or {}
        update = {
            "name": f"refs/heads/{branch}",
            "beforeOid": expect or ZERO,
            "afterOid": sha,
            "force": True,  # replacing AstraForge's own commit; beforeOid keeps it conditional
        }
        variables = {"input": {"repositoryId": self.repo.node_id, "refUpdates": [update]}}
        try:
            self.repo.requester.graphql_query(UPDATE_REFS, variables)
        except Exception as exc:  # PyGithub's GithubException, or requests' errors
            detail = _graphql_error(exc)
            if getattr(exc, "status", None) == 404 or any(m in detail for m in _NO_UPDATE_REFS):
                raise Unsupported(
                    f"this GitHub cannot update a branch conditionally (GraphQL: {detail})",
                    "set publish.commit to `push` or `auto`",
                ) from None
            return Written(False, sha, detail, how=self.how)
        return Written(True, sha, "", bool(verification.get("verified")), self.how)


def _graphql_error(exc: Exception) -> str:
    data = getattr(exc, "data", None)
    status = getattr(exc, "status", None)
    if isinstance(data, dict):
        errors = data.get("errors") or []
        messages = [str(e.get("message")) for e in errors if isinstance(e, dict)]
        if messages:
            return "; ".join(messages)
        if data.get("message"):
            return f"{status} {data['message']}"
    return f"{status or type(exc).__name__}"


def _mismatch(kind: str, expected: str, got: object) -> AstraForgeError:
    return AstraForgeError(
        f"GitHub stored the fix's {kind} as {str(got)[:12]}, not {expected[:12]}: nothing "
        "was committed",
        "set publish.commit to `push` to push with git; the patch is kept",
    )
