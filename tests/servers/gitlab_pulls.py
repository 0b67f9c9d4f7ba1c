"""The GitLab v4 endpoints of a merge request's conversation and of pipelines: MR notes,
replies in discussions, an MR's commits, a pipeline's failed jobs and a job's trace, with the
documented shapes."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from tests.servers.http import HTTPError, Request, Response, commits_between

if TYPE_CHECKING:
    from tests.servers.gitlab import FakeGitLab

PROJECT = r"/api/v4/projects/(?P<project>[^/]+)"


def add_routes(gl: FakeGitLab) -> None:
    """Register the routes on the fake GitLab."""

    def mr(request: Request) -> tuple[int, dict[str, Any]]:
        gl._check(request)
        iid = int(request.params["iid"])
        if iid not in gl.mrs:
            raise HTTPError(404, {"message": "404 Not found"})
        return iid, gl.mrs[iid]

    def note_json(note: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": note["id"],
            "body": note["body"],
            "noteable_type": "MergeRequest",
            "author": {"username": "astraforge"},
            "system": False,
        }

    def body_of(request: Request) -> str:
        data = request.json() if request.body.startswith(b"{") else {}
        return str(data.get("body") or dict(urllib.parse.parse_qsl(request.body.decode()))["body"])

    @gl.route("GET", PROJECT + r"/merge_requests/(?P<iid>\d+)/notes")
    def list_notes(request: Request) -> Any:
        iid, _ = mr(request)
        return [note_json(n) for n in gl.mr_notes.get(iid, [])]

    @gl.route("POST", PROJECT + r"/merge_requests/(?P<iid>\d+)/notes")
    def create_note(request: Request) -> Any:
        iid, _ = mr(request)
        gl._ids += 1
        note = {"id": gl._ids, "body": body_of(request)}
        gl.mr_notes.setdefault(iid, []).append(note)
        return Response(201, note_json(note))

    @gl.route("PUT", PROJECT + r"/merge_requests/(?P<iid>\d+)/notes/(?P<note>\d+)")
    def update_note(request: Request) -> Any:
        iid, _ = mr(request)
        for note in gl.mr_notes.get(iid, []):
            if note["id"] == int(request.params["note"]):
                note["body"] = body_of(request)
                return note_json(note)
        raise HTTPError(404, {"message": "404 Not found"})

    @gl.route("DELETE", PROJECT + r"/merge_requests/(?P<iid>\d+)/notes/(?P<note>\d+)")
    def delete_note(request: Request) -> Any:
        iid, _ = mr(request)
        notes = gl.mr_notes.get(iid, [])
        gl.mr_notes[iid] = [n for n in notes if n["id"] != int(request.params["note"])]
        return Response(204, None)

    @gl.route(
        "POST",
        PROJECT + r"/merge_requests/(?P<iid>\d+)/discussions/(?P<discussion>[^/]+)/notes",
    )
    def reply(request: Request) -> Any:
        iid, _ = mr(request)
        gl._ids += 1
        note = {"id": gl._ids, "body": body_of(request)}
        gl.discussion_replies.append(
            {**note, "mr": iid, "discussion": request.params["discussion"]}
        )
        return Response(201, note_json(note))

    @gl.route("GET", PROJECT + r"/merge_requests/(?P<iid>\d+)/commits")
    def commits(request: Request) -> Any:
        _, found = mr(request)
        return [
            {
                "id": c["sha"],
                "short_id": c["sha"][:8],
                "title": c["message"].split("\n", 1)[0],
                "message": c["message"],
                "author_name": c["name"],
                "author_email": c["email"],
            }
            for c in reversed(
                commits_between(gl.bare, found["target_branch"], found["source_branch"])
            )
        ]

    def job_json(pipeline: int, job: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": job["id"],
            "name": job["name"],
            "stage": job.get("stage", "test"),
            "status": job["status"],
            "allow_failure": job.get("allow_failure", False),
            "pipeline": {"id": pipeline},
            "web_url": f"{gl.url}/{gl.path}/-/jobs/{job['id']}",
        }

    @gl.route("GET", PROJECT + r"/pipelines/(?P<pipeline>\d+)/jobs")
    def pipeline_jobs(request: Request) -> Any:
        gl._check(request)
        pipeline = int(request.params["pipeline"])
        if pipeline not in gl.pipelines:
            raise HTTPError(404, {"message": "404 Not found"})
        scope = [v for k, v in request.query.items() if k.startswith("scope")]
        return [
            job_json(pipeline, j)
            for j in gl.pipelines[pipeline]
            if not scope or j["status"] in scope
        ]

    @gl.route("GET", PROJECT + r"/jobs/(?P<job>\d+)/trace")
    def trace(request: Request) -> Any:
        gl._check(request)
        for jobs in gl.pipelines.values():
            for job in jobs:
                if job["id"] == int(request.params["job"]):
                    return Response(200, job["trace"].encode())
        raise HTTPError(404, {"message": "404 Not found"})
