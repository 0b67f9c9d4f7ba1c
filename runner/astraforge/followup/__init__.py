"""The conversation on a pull/merge request: a comment, a review or a failed CI run continues
the same branch and the same PR.

- :mod:`.state` keeps what a follow-up resumes (the original task and every round) in a
  hidden line of the PR body, so any engine, on any runner, can pick it up;
- :mod:`.resolve` decides whether a PR may be continued (same repository, AstraForge's own
  or allowed by a trusted setting, commits by people with write access, CI rounds left) and
  fetches what the prompt needs: the branch, its diff, the review comments, the failed logs;
- :mod:`.reply` puts the new commit on the branch's tip, updates the PR and answers.
"""
