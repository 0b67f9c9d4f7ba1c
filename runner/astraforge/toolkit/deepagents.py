"""AstraForge's sandbox as a Deep Agents backend: ``create_deep_agent(model=...,
backend=SandboxBackend(sandbox))`` gets its file tools and its shell (``execute``) running
inside the hardened sandbox, never on the host.

Deep Agents' ``BaseSandbox`` builds ``ls``, ``read``, ``grep``, ``glob`` and ``edit`` on
``execute``; this backend adds ``execute`` itself and the file transfers. Paths are the
sandbox's: the workspace is ``/workspace``, and a file outside it is refused.
"""

from __future__ import annotations

from deepagents.backends.protocol import (
    ExecuteResponse,
    FileDownloadResponse,
    FileUploadResponse,
)
from deepagents.backends.sandbox import BaseSandbox

from astraforge.toolkit.sandbox import Sandbox

__all__ = ["SandboxBackend"]


class SandboxBackend(BaseSandbox):
    """A Deep Agents sandbox backend over one :class:`~astraforge.toolkit.Sandbox`."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    @property
    def id(self) -> str:
        return f"astraforge-{self.sandbox.run_id}"

    def execute(self, command: str, *, timeout: int | None = None) -> ExecuteResponse:
        result = self.sandbox.run(command, timeout=timeout)
        return ExecuteResponse(
            output=result.output, exit_code=result.exit_code, truncated=result.truncated
        )

    def upload_files(self, files: list[tuple[str, bytes]]) -> list[FileUploadResponse]:
        responses = []
        for path, content in files:
            try:
                self.sandbox.write_file(path, content)
                responses.append(FileUploadResponse(path=path))
            except (OSError, PermissionError) as exc:
                responses.append(FileUploadResponse(path=path, error=_error(exc)))
        return responses

    def download_files(self, paths: list[str]) -> list[FileDownloadResponse]:
        responses = []
        for path in paths:
            try:
                responses.append(
                    FileDownloadResponse(path=path, content=self.sandbox.read_file(path))
                )
            except OSError as exc:
                responses.append(FileDownloadResponse(path=path, error=_error(exc)))
        return responses


def _error(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission_denied"
    if isinstance(exc, FileNotFoundError):
        return "file_not_found"
    if isinstance(exc, IsADirectoryError) or "not a regular file" in str(exc):
        return "is_directory"
    return str(exc)
