"""GitHub's Git Data endpoints (blobs, trees, commits) and GraphQL's ``updateRefs``, writing
real objects into the fake's bare repository, so a ``git fetch`` sees exactly what the API
made. A commit created without an author, committer or signature is made by the token's bot
and signed (with an SSH key standing in for GitHub's), as GitHub signs a bot's API commits."""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.servers.http import HTTPError, Request, Response

if TYPE_CHECKING:
    from tests.servers.github import FakeGitHub

REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
BOT = ("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com")
ZERO = "0" * 40
MODES = {"100644": "blob", "100755": "blob", "120000": "blob", "160000": "commit", "040000": "tree"}


def invalid(message: str) -> HTTPError:
    return HTTPError(422, {"message": message, "status": "422"})


class GitObjects:
    """Git plumbing on the fake's bare repository."""

    def __init__(self, gh: FakeGitHub) -> None:
        self.gh = gh
        key = gh.bare.parent / "github-signing-key"
        if not key.exists():
            key.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "github", "-f", str(key)],
                check=True,
            )
        self.key = key
        self.allowed_signers = key.parent / "allowed_signers"
        public = (key.parent / "github-signing-key.pub").read_text().strip()
        self.allowed_signers.write_text(f'{BOT[1]} namespaces="git" {public}\n')

    def git(
        self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        base = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG")}
        base |= {"GIT_CONFIG_NOSYSTEM": "1", "HOME": os.devnull, **(env or {})}
        return subprocess.run(
            ["git", "-C", str(self.gh.bare), *args],
            input=input,
            env=base,
            capture_output=True,
            check=False,
        )

    def kind(self, sha: str) -> str:
        result = self.git("cat-file", "-t", sha)
        return result.stdout.decode().strip() if result.returncode == 0 else ""

    def write_blob(self, data: bytes) -> str:
        return self.git("hash-object", "-w", "--stdin", input=data).stdout.decode().strip()

    def build_tree(self, base_tree: str | None, entries: list[dict[str, Any]]) -> str:
        with tempfile.TemporaryDirectory() as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            if base_tree:
                if self.kind(base_tree) != "tree":
                    raise invalid("base_tree is not a valid tree oid")
                self.git("read-tree", base_tree, env=env)
            for entry in entries:
                path, mode = str(entry.get("path") or ""), str(entry.get("mode") or "")
                if not path or path.startswith("/") or "//" in path or ".." in path.split("/"):
                    raise invalid(f"tree.path contains a malformed path component: {path!r}")
                if MODES.get(mode) != entry.get("type"):
                    raise invalid(f"tree.mode {mode!r} does not match tree.type")
                if "content" in entry:
                    sha = self.write_blob(str(entry["content"]).encode("utf-8"))
                elif entry.get("sha") is None:  # a deletion
                    line = f"0 {ZERO}\t{path}\n".encode()
                    self.git("update-index", "--index-info", input=line, env=env)
                    continue
                else:
                    sha = str(entry["sha"])
                    if entry["type"] != "commit" and self.kind(sha) != entry["type"]:
                        raise invalid(f"tree.sha {sha} is not a valid {entry['type']}")
                added = self.git(
                    "update-index", "--add", "--replace", "--cacheinfo", f"{mode},{sha},{path}",
                    env=env,
                )  # fmt: skip
                if added.returncode != 0:
                    raise invalid(added.stderr.decode().strip())
            return self.git("write-tree", env=env).stdout.decode().strip()

    def commit(self, body: dict[str, Any]) -> tuple[str, bool]:
        """(sha, signed) of a commit made from the request."""
        tree, parents = str(body.get("tree") or ""), body.get("parents") or []
        if not isinstance(body.get("message"), str):
            raise invalid("message is required")
        if self.kind(tree) != "tree":
            raise invalid("Tree SHA does not exist")
        if any(self.kind(str(p)) != "commit" for p in parents):
            raise invalid("Parent SHA does not exist or is not a commit object")
        author, committer = body.get("author"), body.get("committer")
        signed = not author and not committer and not body.get("signature")
        who = author or {"name": BOT[0], "email": BOT[1]}
        by = committer or who
        env = {
            "GIT_AUTHOR_NAME": who["name"],
            "GIT_AUTHOR_EMAIL": who["email"],
            "GIT_COMMITTER_NAME": by["name"],
            "GIT_COMMITTER_EMAIL": by["email"],
        }
        sign = ["-c", "gpg.format=ssh", "-c", f"user.signingKey={self.key}"] if signed else []
        args = [*sign, "commit-tree", *(["-S"] if signed else []), tree]
        for parent in parents:
            args += ["-p", str(parent)]
        made = self.git(*args, input=body["message"].encode(), env=env)
        if made.returncode != 0:
            raise HTTPError(500, {"message": made.stderr.decode()})
        return made.stdout.decode().strip(), signed

    def commit_json(self, sha: str, signed: bool | None = None) -> dict[str, Any]:
        raw = self.git("cat-file", "commit", sha).stdout.decode()
        header, _, message = raw.partition("\n\n")
        fields = [line.split(" ", 1) for line in header.splitlines() if not line.startswith(" ")]
        values: dict[str, list[str]] = {}
        for key, value in fields:
            values.setdefault(key, []).append(value)
        if signed is None:
            signed = "gpgsig" in values

        def person(text: str) -> dict[str, str]:
            name, _, rest = text.partition(" <")
            return {"name": name, "email": rest.split(">")[0], "date": "2026-12-01T00:00:00Z"}

        api = self.gh.api
        return {
            "sha": sha,
            "node_id": f"C_{sha[:12]}",
            "url": api(f"/git/commits/{sha}"),
            "html_url": f"{self.gh.url}/{self.gh.full_name}/commit/{sha}",
            "author": person(values["author"][0]),
            "committer": person(values["committer"][0]),
            "message": message,
            "tree": {"sha": values["tree"][0], "url": api(f"/git/trees/{values['tree'][0]}")},
            "parents": [
                {"sha": p, "url": api(f"/git/commits/{p}"), "html_url": ""}
                for p in values.get("parent", [])
            ],
            "verification": {
                "verified": signed,
                "reason": "valid" if signed else "unsigned",
                "signature": None,
                "payload": None,
                "verified_at": "2026-12-01T00:00:00Z" if signed else None,
            },
        }

    def tree_json(self, sha: str) -> dict[str, Any]:
        listed = self.git("ls-tree", "-z", "--long", sha).stdout.decode().split("\0")
        entries = []
        for line in filter(None, listed):
            meta, path = line.split("\t", 1)
            mode, kind, object_sha, size = meta.split()
            entry = {"path": path, "mode": mode, "type": kind, "sha": object_sha}
            if kind == "blob":
                entry["size"] = int(size)
            entries.append(entry)
        return {"sha": sha, "url": self.gh.api(f"/git/trees/{sha}"), "tree": entries}

    def update_ref(self, update: dict[str, Any]) -> str | None:
        """Apply one RefUpdate; the error message, or None."""
        name, after = str(update.get("name")), str(update.get("afterOid"))
        before = update.get("beforeOid")
        if not name.startswith("refs/heads/"):
            return f"ref {name} is not a fully qualified branch name"
        current = self.git("rev-parse", "--verify", "-q", name).stdout.decode().strip() or ZERO
        if before is not None and before != current:
            return f"{name} does not point to {before} (it points to {current})"
        if after != ZERO and self.kind(after) != "commit":
            return f"afterOid {after} is not a commit"
        if not update.get("force") and current != ZERO and after != ZERO:
            ancestor = self.git("merge-base", "--is-ancestor", current, after)
            if ancestor.returncode != 0:
                return f"{name}: update is not a fast forward"
        hook = self.gh.bare / "hooks" / "pre-receive"
        if hook.exists():  # branch protection: the same rules as for a push
            checked = subprocess.run(
                [str(hook)],
                input=f"{current} {after} {name}\n".encode(),
                env={"PATH": os.environ["PATH"], "GIT_DIR": str(self.gh.bare)},
                capture_output=True,
                check=False,
            )
            if checked.returncode != 0:
                return f"{name}: {checked.stderr.decode().strip() or 'declined'}"
        moved = self.git("update-ref", name, after, current)
        if moved.returncode != 0:
            return f"{name} does not point to {current}: {moved.stderr.decode().strip()}"
        return None


def add_routes(gh: FakeGitHub) -> None:
    """Register the Git Data and GraphQL routes on the fake GitHub."""
    objects = GitObjects(gh)
    gh.git_objects = objects

    @gh.route("POST", REPO + r"/git/blobs")
    def create_blob(request: Request) -> Any:
        gh._repo(request)
        body = request.json()
        content = body.get("content")
        if not isinstance(content, str):
            raise invalid("content is required")
        if body.get("encoding", "utf-8") == "base64":
            data = base64.b64decode(content)
        else:
            data = content.encode("utf-8")
        sha = objects.write_blob(data)
        return Response(201, {"sha": sha, "url": gh.api(f"/git/blobs/{sha}")})

    @gh.route("POST", REPO + r"/git/trees")
    def create_tree(request: Request) -> Any:
        gh._repo(request)
        body = request.json()
        if not isinstance(body.get("tree"), list):
            raise invalid("tree is required")
        sha = objects.build_tree(body.get("base_tree"), body["tree"])
        return Response(201, objects.tree_json(sha))

    def existing(request: Request, kind: str) -> str:
        """The sha of a GET for an object of ``kind``; 404 when the repository has none."""
        gh._repo(request)
        if objects.kind(request.params["sha"]) != kind:
            raise HTTPError(404, {"message": "Not Found"})
        return request.params["sha"]

    @gh.route("GET", REPO + r"/git/trees/(?P<sha>[0-9a-f]{40})")
    def get_tree(request: Request) -> Any:
        return objects.tree_json(existing(request, "tree"))

    @gh.route("POST", REPO + r"/git/commits")
    def create_commit(request: Request) -> Any:
        gh._repo(request)
        sha, signed = objects.commit(request.json())
        return Response(201, objects.commit_json(sha, signed))

    @gh.route("GET", REPO + r"/git/commits/(?P<sha>[0-9a-f]{40})")
    def get_commit(request: Request) -> Any:
        return objects.commit_json(existing(request, "commit"))

    @gh.route("POST", r"/graphql")
    def graphql(request: Request) -> Any:
        gh._auth(request)
        body = request.json()
        query = str(body.get("query") or "")
        if "updateRefs" not in query or not gh.graphql_update_refs:
            message = "Field 'updateRefs' doesn't exist on type 'Mutation'"
            error = {"message": message, "extensions": {"code": "undefinedField"}}
            return {"errors": [error]}
        data = (body.get("variables") or {}).get("input") or {}
        if data.get("repositoryId") != gh.node_id:
            error = {"type": "NOT_FOUND", "path": ["updateRefs"], "message": "Could not resolve"}
            return {"data": {"updateRefs": None}, "errors": [error]}
        for update in data.get("refUpdates") or []:
            failed = objects.update_ref(update)
            if failed:
                error = {"type": "UNPROCESSABLE", "path": ["updateRefs"], "message": failed}
                return {"data": {"updateRefs": None}, "errors": [error]}
        return {"data": {"updateRefs": {"clientMutationId": None}}}
