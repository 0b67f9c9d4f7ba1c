"""The GitHub REST v3 endpoints AstraForge uses, with the documented shapes, backed by a real
bare repository served over git smart HTTP (a PR can only be opened for a pushed branch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.servers.http import APIServer, HTTPError, Request, Response, branch_exists, tip

REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"


class FakeGitHub(APIServer):
    def __init__(self, root: Path, token: str, full_name: str = "octo/shop") -> None:
        super().__init__(root / "git", lambda user, tok: tok == token)
        self.token = token
        self.full_name = full_name
        self.bare = root / "git" / f"{full_name}.git"
        self.pulls: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.roles: dict[str, str] = {}
        self.dispatches: list[dict[str, Any]] = []
        self.logins: dict[str, str] = {}  # commit author e-mail -> GitHub login
        self.reviews: dict[int, list[dict[str, Any]]] = {}  # review id -> its comments
        self.replies: list[dict[str, Any]] = []  # replies in review threads
        self.runs: dict[int, dict[str, Any]] = {}  # workflow run id -> name, jobs with logs
        self.checks: dict[int, dict[str, Any]] = {}  # check run id -> name, output, annotations
        self.node_id = "R_kgDOAstra01"
        self.graphql_update_refs = True  # False: a GitHub whose GraphQL lacks updateRefs
        self.git_objects: Any = None
        self._ids = 1000
        self._routes()
        from tests.servers import github_git, github_pulls

        github_pulls.add_routes(self)
        github_git.add_routes(self)

    def before_dispatch(self, request: Request) -> None:
        """A branch update through GraphQL counts as a push for the ``before_push`` hooks."""
        if request.path == "/graphql" and b"updateRefs" in request.body:
            for hook in list(self.before_push):
                hook(request.path)

    def api(self, path: str = "") -> str:
        return f"{self.url}/repos/{self.full_name}{path}"

    def _auth(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        if header not in (f"token {self.token}", f"Bearer {self.token}"):
            raise HTTPError(
                401,
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
            )

    def _repo(self, request: Request) -> None:
        self._auth(request)
        if f"{request.params['owner']}/{request.params['name']}" != self.full_name:
            raise HTTPError(404, {"message": "Not Found"})

    def _user(self, login: str) -> dict[str, Any]:
        return {
            "login": login,
            "id": abs(hash(login)) % 10**6,
            "type": "User",
            "url": f"{self.url}/users/{login}",
        }

    def _pull_json(self, number: int) -> dict[str, Any]:
        pull = self.pulls[number]
        owner = self.full_name.split("/")[0]
        head_repo = pull.get("head_repo", self.full_name)
        head_owner, head_name = head_repo.split("/")
        sha = tip(self.bare, pull["head"]) or "0" * 40
        return {
            "url": self.api(f"/pulls/{number}"),
            "html_url": f"{self.url}/{self.full_name}/pull/{number}",
            "issue_url": self.api(f"/issues/{number}"),
            "id": 500 + number,
            "number": number,
            "state": pull["state"],
            "title": pull["title"],
            "body": pull["body"],
            "draft": pull["draft"],
            "labels": [{"name": n} for n in pull["labels"]],
            "assignees": [self._user(u) for u in pull["assignees"]],
            "requested_reviewers": [self._user(u) for u in pull["reviewers"]],
            "head": {
                "ref": pull["head"],
                "label": f"{head_owner}:{pull['head']}",
                "sha": sha,
                "repo": {
                    "id": 2 if head_repo != self.full_name else 1,
                    "name": head_name,
                    "full_name": head_repo,
                    "owner": self._user(head_owner),
                    "url": f"{self.url}/repos/{head_repo}",
                },
            },
            "base": {
                "ref": pull["base"],
                "label": f"{owner}:{pull['base']}",
                "sha": tip(self.bare, pull["base"]) or "0" * 40,
                "repo": {
                    "id": 1,
                    "name": self.full_name.split("/")[1],
                    "full_name": self.full_name,
                    "owner": self._user(owner),
                    "url": self.api(),
                },
            },
            "user": self._user(pull.get("author", "astraforge[bot]")),
        }

    def _issue_json(self, number: int) -> dict[str, Any]:
        labels = self.pulls.get(number, {}).get("labels", [])
        return {
            "url": self.api(f"/issues/{number}"),
            "html_url": f"{self.url}/{self.full_name}/issues/{number}",
            "number": number,
            "id": 700 + number,
            "title": f"issue {number}",
            "state": "open",
            "labels": [{"name": n} for n in labels],
            "user": self._user("reporter"),
        }

    def _comment_json(self, issue: int, comment: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": comment["id"],
            "url": self.api(f"/issues/comments/{comment['id']}"),
            "html_url": f"{self.url}/{self.full_name}/issues/{issue}#issuecomment-{comment['id']}",
            "issue_url": self.api(f"/issues/{issue}"),
            "body": comment["body"],
            "user": self._user("astraforge[bot]"),
        }

    def _routes(self) -> None:
        @self.route("GET", REPO)
        def repo(request: Request) -> Any:
            self._repo(request)
            owner, name = self.full_name.split("/")
            return {
                "id": 1,
                "node_id": self.node_id,
                "name": name,
                "full_name": self.full_name,
                "owner": self._user(owner),
                "default_branch": self.default_branch(),
                "url": self.api(),
                "html_url": f"{self.url}/{self.full_name}",
                "clone_url": f"{self.url}/git/{self.full_name}.git",
                "private": False,
            }

        @self.route("POST", REPO + r"/dispatches")
        def dispatch(request: Request) -> Any:
            self._repo(request)
            body = request.json()
            if not isinstance(body.get("event_type"), str):
                raise HTTPError(422, {"message": "event_type is required"})
            payload = body.get("client_payload", {})
            if len(payload) > 10:
                raise HTTPError(422, {"message": "client_payload has more than 10 keys"})
            if len(json.dumps(payload, separators=(",", ":"))) > 65_535:
                raise HTTPError(422, {"message": "client_payload is too large"})
            self.dispatches.append(body)
            return Response(204, None)

        @self.route("GET", REPO + r"/collaborators/(?P<user>[^/]+)/permission")
        def permission(request: Request) -> Any:
            self._repo(request)
            role = self.roles.get(request.params["user"], "none")
            legacy = {"maintain": "write", "triage": "read"}.get(role, role)
            return {
                "permission": legacy,
                "role_name": role,
                "user": self._user(request.params["user"]),
            }

        @self.route("GET", REPO + r"/pulls")
        def list_pulls(request: Request) -> Any:
            self._repo(request)
            head = request.query.get("head", "")
            state = request.query.get("state", "open")
            return [
                self._pull_json(n)
                for n, p in sorted(self.pulls.items())
                if (state == "all" or p["state"] == state)
                and (not head or head.split(":", 1)[-1] == p["head"])
            ]

        @self.route("POST", REPO + r"/pulls")
        def create_pull(request: Request) -> Any:
            self._repo(request)
            data = request.json()
            head = data["head"].split(":", 1)[-1]
            if not branch_exists(self.bare, head):
                raise HTTPError(
                    422,
                    {
                        "message": "Validation Failed",
                        "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}],
                    },
                )
            for p in self.pulls.values():
                if p["head"] == head and p["state"] == "open":
                    owner = self.full_name.split("/")[0]
                    exists = f"A pull request already exists for {owner}:{head}."
                    error = {"resource": "PullRequest", "code": "custom", "message": exists}
                    raise HTTPError(422, {"message": "Validation Failed", "errors": [error]})
            number = max([99, *self.pulls]) + 1  # issues hold the numbers below
            self.pulls[number] = {
                "title": data["title"],
                "body": data.get("body") or "",
                "head": head,
                "base": data["base"],
                "state": "open",
                "draft": bool(data.get("draft")),
                "labels": [],
                "assignees": [],
                "reviewers": [],
            }
            return Response(201, self._pull_json(number))

        @self.route("GET", REPO + r"/pulls/(?P<number>\d+)")
        def get_pull(request: Request) -> Any:
            self._repo(request)
            number = int(request.params["number"])
            if number not in self.pulls:
                raise HTTPError(404, {"message": "Not Found"})
            return self._pull_json(number)

        @self.route("PATCH", REPO + r"/pulls/(?P<number>\d+)")
        def edit_pull(request: Request) -> Any:
            self._repo(request)
            number = int(request.params["number"])
            for key in ("title", "body", "state"):
                if key in request.json():
                    self.pulls[number][key] = request.json()[key]
            return self._pull_json(number)

        @self.route("POST", REPO + r"/pulls/(?P<number>\d+)/requested_reviewers")
        def reviewers(request: Request) -> Any:
            self._repo(request)
            number = int(request.params["number"])
            self.pulls[number]["reviewers"] += request.json().get("reviewers", [])
            return Response(201, self._pull_json(number))

        @self.route("GET", REPO + r"/issues/(?P<number>\d+)")
        def get_issue(request: Request) -> Any:
            self._repo(request)
            return self._issue_json(int(request.params["number"]))

        @self.route("POST", REPO + r"/issues/(?P<number>\d+)/labels")
        def labels(request: Request) -> Any:
            self._repo(request)
            number = int(request.params["number"])
            pull = self.pulls[number]
            body = request.json()
            new = body if isinstance(body, list) else body.get("labels", [])
            pull["labels"] = list(dict.fromkeys([*pull["labels"], *new]))
            return [{"name": n} for n in pull["labels"]]

        @self.route("POST", REPO + r"/issues/(?P<number>\d+)/assignees")
        def assignees(request: Request) -> Any:
            self._repo(request)
            number = int(request.params["number"])
            self.pulls[number]["assignees"] += request.json().get("assignees", [])
            return Response(201, self._issue_json(number))

        @self.route("GET", REPO + r"/issues/(?P<number>\d+)/comments")
        def list_comments(request: Request) -> Any:
            self._repo(request)
            number = int(request.params["number"])
            return [self._comment_json(number, c) for c in self.comments.get(number, [])]

        @self.route("POST", REPO + r"/issues/(?P<number>\d+)/comments")
        def create_comment(request: Request) -> Any:
            self._repo(request)
            number = int(request.params["number"])
            self._ids += 1
            comment = {"id": self._ids, "body": request.json()["body"]}
            self.comments.setdefault(number, []).append(comment)
            return Response(201, self._comment_json(number, comment))

        def find(comment_id: int) -> tuple[int, dict[str, Any]]:
            for number, items in self.comments.items():
                for comment in items:
                    if comment["id"] == comment_id:
                        return number, comment
            raise HTTPError(404, {"message": "Not Found"})

        @self.route("GET", REPO + r"/issues/comments/(?P<id>\d+)")
        def get_comment(request: Request) -> Any:
            self._repo(request)
            number, comment = find(int(request.params["id"]))
            return self._comment_json(number, comment)

        @self.route("DELETE", REPO + r"/issues/comments/(?P<id>\d+)")
        def delete_comment(request: Request) -> Any:
            self._repo(request)
            number, comment = find(int(request.params["id"]))
            self.comments[number].remove(comment)
            return Response(204, None)

        @self.route("PATCH", REPO + r"/issues/comments/(?P<id>\d+)")
        def edit_comment(request: Request) -> Any:
            self._repo(request)
            number, comment = find(int(request.params["id"]))
            comment["body"] = request.json()["body"]
            return self._comment_json(number, comment)
