"""The GitLab v4 endpoints AstraForge uses, with the documented shapes, backed by a real bare
repository served over git smart HTTP."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

from tests.servers.http import APIServer, HTTPError, Request, Response, branch_exists, tip

PROJECT = r"/api/v4/projects/(?P<project>[^/]+)"


class FakeGitLab(APIServer):
    def __init__(self, root: Path, token: str, path: str = "acme/shop") -> None:
        super().__init__(root / "git", lambda user, tok: tok == token)
        self.token = token
        self.path = path
        self.project_id = 42
        self.bare = root / "git" / f"{path}.git"
        self.mrs: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, list[dict[str, Any]]] = {}
        self.users: dict[str, int] = {}
        self.members: dict[int, int] = {}  # user id -> access level
        self.trigger_token = "glptt-" + "TriggerTok" * 2
        self.triggers: list[dict[str, str]] = []
        self.emails: dict[str, str] = {}  # public e-mail -> username
        self.mr_notes: dict[int, list[dict[str, Any]]] = {}
        self.discussion_replies: list[dict[str, Any]] = []
        self.pipelines: dict[int, list[dict[str, Any]]] = {}  # pipeline id -> jobs with traces
        self._ids = 5000
        self._routes()
        from tests.servers.gitlab_pulls import add_routes

        add_routes(self)

    def add_member(self, username: str, access_level: int) -> None:
        user_id = 100 + len(self.users)
        self.users[username] = user_id
        self.members[user_id] = access_level

    def _check(self, request: Request) -> None:
        if self.token not in (
            request.headers.get("private-token"),
            request.headers.get("job-token"),
        ):
            raise HTTPError(401, {"message": "401 Unauthorized"})
        if "project" in request.params:
            wanted = request.params["project"]
            if wanted not in (str(self.project_id), self.path):
                raise HTTPError(404, {"message": "404 Project Not Found"})

    def _mr_json(self, iid: int) -> dict[str, Any]:
        mr = self.mrs[iid]
        return {
            "id": 9000 + iid,
            "iid": iid,
            "project_id": self.project_id,
            "title": mr["title"],
            "description": mr["description"],
            "state": mr["state"],
            "draft": mr["title"].startswith("Draft: "),
            "source_branch": mr["source_branch"],
            "target_branch": mr["target_branch"],
            "labels": mr["labels"],
            "source_project_id": mr.get("source_project_id", self.project_id),
            "target_project_id": self.project_id,
            "sha": tip(self.bare, mr["source_branch"]) or None,
            "author": {"username": mr.get("author", "astraforge")},
            "assignees": [{"id": i} for i in mr["assignee_ids"]],
            "reviewers": [{"id": i} for i in mr["reviewer_ids"]],
            "web_url": f"{self.url}/{self.path}/-/merge_requests/{iid}",
        }

    def _routes(self) -> None:
        @self.route("GET", PROJECT)
        def project(request: Request) -> Any:
            self._check(request)
            return {
                "id": self.project_id,
                "path_with_namespace": self.path,
                "default_branch": self.default_branch(),
                "http_url_to_repo": f"{self.url}/git/{self.path}.git",
                "web_url": f"{self.url}/{self.path}",
            }

        @self.route("POST", PROJECT + r"/trigger/pipeline")
        def trigger(request: Request) -> Any:
            form = dict(urllib.parse.parse_qsl(request.body.decode()))
            if form.get("token") != self.trigger_token:
                raise HTTPError(404, {"message": "404 Not Found"})
            if request.params["project"] not in (str(self.project_id), self.path):
                raise HTTPError(404, {"message": "404 Project Not Found"})
            self.triggers.append(form)
            return Response(
                201, {"id": len(self.triggers), "ref": form.get("ref"), "status": "created"}
            )

        @self.route("GET", r"/api/v4/users")
        def users(request: Request) -> Any:
            self._check(request)
            name = request.query.get("username", "")
            search = request.query.get("search")
            if search is not None:  # GitLab matches a public e-mail exactly
                name = self.emails.get(search, "")
                if name not in self.users:
                    return []
                return [{"id": self.users[name], "username": name, "public_email": search}]
            return [{"id": self.users[name], "username": name}] if name in self.users else []

        @self.route("GET", PROJECT + r"/members/all/(?P<user>\d+)")
        def member(request: Request) -> Any:
            self._check(request)
            user_id = int(request.params["user"])
            if user_id not in self.members:
                raise HTTPError(404, {"message": "404 Not found"})
            name = next(n for n, i in self.users.items() if i == user_id)
            return {"id": user_id, "username": name, "access_level": self.members[user_id]}

        @self.route("GET", PROJECT + r"/merge_requests")
        def list_mrs(request: Request) -> Any:
            self._check(request)
            source = request.query.get("source_branch")
            state = request.query.get("state", "all")
            return [
                self._mr_json(i)
                for i, mr in sorted(self.mrs.items())
                if (state == "all" or mr["state"] == state)
                and (source is None or mr["source_branch"] == source)
            ]

        @self.route("POST", PROJECT + r"/merge_requests")
        def create_mr(request: Request) -> Any:
            self._check(request)
            data = request.json()
            source = data["source_branch"]
            if not branch_exists(self.bare, source):
                raise HTTPError(422, {"message": ["Source branch does not exist"]})
            for iid, mr in self.mrs.items():
                if mr["source_branch"] == source and mr["state"] == "opened":
                    raise HTTPError(
                        409,
                        {
                            "message": [
                                "Another open merge request already exists for this source branch: "
                                f"!{iid}"
                            ]
                        },
                    )
            iid = max([0, *self.mrs]) + 1
            self.mrs[iid] = {
                "title": data["title"],
                "description": data.get("description", ""),
                "source_branch": source,
                "target_branch": data["target_branch"],
                "state": "opened",
                "labels": [],
                "assignee_ids": [],
                "reviewer_ids": [],
            }
            return Response(201, self._mr_json(iid))

        @self.route("GET", PROJECT + r"/merge_requests/(?P<iid>\d+)")
        def get_mr(request: Request) -> Any:
            self._check(request)
            iid = int(request.params["iid"])
            if iid not in self.mrs:
                raise HTTPError(404, {"message": "404 Not found"})
            return self._mr_json(iid)

        @self.route("PUT", PROJECT + r"/merge_requests/(?P<iid>\d+)")
        def update_mr(request: Request) -> Any:
            self._check(request)
            iid = int(request.params["iid"])
            mr = self.mrs[iid]
            data = request.json()
            for key in ("title", "description", "assignee_ids", "reviewer_ids"):
                if key in data:
                    mr[key] = data[key]
            if "add_labels" in data:
                new = [x for x in str(data["add_labels"]).split(",") if x]
                mr["labels"] = list(dict.fromkeys([*mr["labels"], *new]))
            return self._mr_json(iid)

        def note_json(note: dict[str, Any]) -> dict[str, Any]:
            return {
                "id": note["id"],
                "body": note["body"],
                "noteable_type": "Issue",
                "author": {"username": "astraforge"},
                "system": False,
            }

        @self.route("GET", PROJECT + r"/issues/(?P<iid>\d+)/notes")
        def list_notes(request: Request) -> Any:
            self._check(request)
            return [note_json(n) for n in self.notes.get(int(request.params["iid"]), [])]

        @self.route("POST", PROJECT + r"/issues/(?P<iid>\d+)/notes")
        def create_note(request: Request) -> Any:
            self._check(request)
            self._ids += 1
            data = request.json() or dict(urllib.parse.parse_qsl(request.body.decode()))
            note = {"id": self._ids, "body": data["body"]}
            self.notes.setdefault(int(request.params["iid"]), []).append(note)
            return Response(201, note_json(note))

        @self.route("DELETE", PROJECT + r"/issues/(?P<iid>\d+)/notes/(?P<note>\d+)")
        def delete_note(request: Request) -> Any:
            self._check(request)
            notes = self.notes.get(int(request.params["iid"]), [])
            for note in notes:
                if note["id"] == int(request.params["note"]):
                    notes.remove(note)
                    return Response(204, None)
            raise HTTPError(404, {"message": "404 Not found"})

        @self.route("PUT", PROJECT + r"/issues/(?P<iid>\d+)/notes/(?P<note>\d+)")
        def update_note(request: Request) -> Any:
            self._check(request)
            for note in self.notes.get(int(request.params["iid"]), []):
                if note["id"] == int(request.params["note"]):
                    note["body"] = request.json()["body"]
                    return note_json(note)
            raise HTTPError(404, {"message": "404 Not found"})
