"""The GitHub REST endpoints of a pull request's conversation and of Actions runs: a PR's
commits, a review's comments, replies in review threads, workflow runs, their jobs, and job
logs (a 302 to a storage link that takes no credentials), with the documented shapes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.servers.http import HTTPError, Request, Response, commits_between

if TYPE_CHECKING:
    from tests.servers.github import FakeGitHub

REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
DATE = "2026-12-01T00:00:00Z"


def add_routes(gh: FakeGitHub) -> None:
    """Register the routes on the fake GitHub."""

    def pull(request: Request) -> dict[str, Any]:
        gh._repo(request)
        number = int(request.params["number"])
        if number not in gh.pulls:
            raise HTTPError(404, {"message": "Not Found"})
        return gh.pulls[number]

    @gh.route("GET", REPO + r"/pulls/(?P<number>\d+)/commits")
    def commits(request: Request) -> Any:
        found = pull(request)
        return [
            {
                "sha": c["sha"],
                "url": gh.api(f"/commits/{c['sha']}"),
                "html_url": f"{gh.url}/{gh.full_name}/commit/{c['sha']}",
                "commit": {
                    "message": c["message"],
                    "author": {
                        "name": c["name"],
                        "email": c["email"],
                        "date": "2026-12-01T00:00:00Z",
                    },
                },
                "author": gh._user(gh.logins[c["email"]]) if c["email"] in gh.logins else None,
                "parents": [],
            }
            for c in commits_between(gh.bare, found["base"], found["head"])
        ]

    def review_comment(number: int, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": item["id"],
            "pull_request_review_id": item.get("review_id"),
            "url": gh.api(f"/pulls/comments/{item['id']}"),
            "html_url": f"{gh.url}/{gh.full_name}/pull/{number}#discussion_r{item['id']}",
            "body": item["body"],
            "path": item.get("path"),
            "line": item.get("line"),
            "original_line": item.get("line"),
            "side": "RIGHT",
            "diff_hunk": item.get("diff_hunk", ""),
            "in_reply_to_id": item.get("in_reply_to_id"),
            "user": gh._user(item.get("user", "reviewer")),
            "commit_id": "0" * 40,
        }

    @gh.route("GET", REPO + r"/pulls/(?P<number>\d+)/reviews/(?P<review>\d+)/comments")
    def review_comments(request: Request) -> Any:
        pull(request)
        number, review = int(request.params["number"]), int(request.params["review"])
        return [review_comment(number, c) for c in gh.reviews.get(review, [])]

    @gh.route("POST", REPO + r"/pulls/(?P<number>\d+)/comments/(?P<comment>\d+)/replies")
    def reply(request: Request) -> Any:
        pull(request)
        number = int(request.params["number"])
        gh._ids += 1
        item = {
            "id": gh._ids,
            "body": request.json()["body"],
            "in_reply_to_id": int(request.params["comment"]),
            "user": "astraforge[bot]",
            "pull": number,
        }
        gh.replies.append(item)
        return Response(201, review_comment(number, item))

    def run_json(run_id: int) -> dict[str, Any]:
        if run_id not in gh.runs:
            raise HTTPError(404, {"message": "Not Found"})
        run = gh.runs[run_id]
        return {
            "id": run_id,
            "name": run["name"],
            "head_branch": run.get("head_branch"),
            "head_sha": run.get("head_sha", "0" * 40),
            "status": "completed",
            "conclusion": run.get("conclusion", "failure"),
            "url": gh.api(f"/actions/runs/{run_id}"),
            "html_url": f"{gh.url}/{gh.full_name}/actions/runs/{run_id}",
            "jobs_url": gh.api(f"/actions/runs/{run_id}/jobs"),
            "logs_url": gh.api(f"/actions/runs/{run_id}/logs"),
        }

    def job_json(run_id: int, job: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": job["id"],
            "run_id": run_id,
            "name": job["name"],
            "status": "completed",
            "conclusion": job["conclusion"],
            "url": gh.api(f"/actions/jobs/{job['id']}"),
            "html_url": f"{gh.url}/{gh.full_name}/actions/runs/{run_id}/job/{job['id']}",
            "run_url": gh.api(f"/actions/runs/{run_id}"),
            "steps": [],
        }

    def find_job(job_id: int) -> tuple[int, dict[str, Any]]:
        for run_id, run in gh.runs.items():
            for job in run["jobs"]:
                if job["id"] == job_id:
                    return run_id, job
        raise HTTPError(404, {"message": "Not Found"})

    @gh.route("GET", REPO + r"/actions/runs/(?P<run>\d+)")
    def get_run(request: Request) -> Any:
        gh._repo(request)
        return run_json(int(request.params["run"]))

    @gh.route("GET", REPO + r"/actions/runs/(?P<run>\d+)/jobs")
    def list_jobs(request: Request) -> Any:
        gh._repo(request)
        run_id = int(request.params["run"])
        run_json(run_id)
        jobs = [job_json(run_id, j) for j in gh.runs[run_id]["jobs"]]
        return {"total_count": len(jobs), "jobs": jobs}

    @gh.route("GET", REPO + r"/actions/jobs/(?P<job>\d+)")
    def get_job(request: Request) -> Any:
        gh._repo(request)
        return job_json(*find_job(int(request.params["job"])))

    @gh.route("GET", REPO + r"/actions/jobs/(?P<job>\d+)/logs")
    def job_logs(request: Request) -> Any:
        gh._repo(request)
        _, job = find_job(int(request.params["job"]))
        return Response(302, None, {"Location": f"{gh.url}/_blobs/job-{job['id']}.txt"})

    @gh.route("GET", REPO + r"/check-runs/(?P<check>\d+)")
    def check_run(request: Request) -> Any:
        gh._repo(request)
        check_id = int(request.params["check"])
        if check_id not in gh.checks:
            raise HTTPError(404, {"message": "Not Found"})
        check = gh.checks[check_id]
        return {
            "id": check_id,
            "name": check["name"],
            "status": "completed",
            "conclusion": "failure",
            "url": gh.api(f"/check-runs/{check_id}"),
            "html_url": f"{gh.url}/{gh.full_name}/runs/{check_id}",
            "output": {
                **check["output"],
                "annotations_count": len(check["annotations"]),
                "annotations_url": gh.api(f"/check-runs/{check_id}/annotations"),
            },
        }

    @gh.route("GET", REPO + r"/check-runs/(?P<check>\d+)/annotations")
    def annotations(request: Request) -> Any:
        gh._repo(request)
        return gh.checks[int(request.params["check"])]["annotations"]

    @gh.route("GET", r"/_blobs/job-(?P<job>\d+)\.txt")
    def blob(request: Request) -> Any:
        _, job = find_job(int(request.params["job"]))
        return Response(200, job["log"].encode())
