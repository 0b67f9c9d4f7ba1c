"""Which host each credential belongs to, checked where a request is built.

Every secret the runner sends (the model key, the forge token, the Sentry token) is bound to
the hosts it belongs to, as the trusted configuration names them. Before a request carries a
secret, :meth:`Credentials.check` makes sure the URL's host is one of those of *every*
credential holding that value: a repository cannot point the GitHub token at its own server
by naming ``GITHUB_TOKEN`` as the model key, and a misconfigured workflow gets one clear error
instead of a leak.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from astraforge.errors import ConfigError

GITHUB_HOSTS = ("https://api.github.com", "https://github.com")
GITLAB_URL = "https://gitlab.com"
OPENAI_URL = "https://api.openai.com/v1"
FORGE_TOKENS = {
    "github": ("ASTRAFORGE_GITHUB_TOKEN", "GITHUB_TOKEN"),
    "gitlab": ("ASTRAFORGE_GITLAB_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN"),
}


def host_of(url: str) -> str:
    """The host[:port] of a URL, lower-cased (a file path has none)."""
    parsed = urllib.parse.urlsplit(url)
    if not parsed.hostname:
        return ""
    port = f":{parsed.port}" if parsed.port else ""
    return parsed.hostname.lower() + port


class CredentialError(ConfigError):
    """A secret was about to be sent to a host it does not belong to."""


@dataclass(frozen=True)
class Credential:
    """A secret and the hosts it may be sent to."""

    name: str  # the variable it came from, for messages
    value: str
    hosts: frozenset[str]


@dataclass
class Credentials:
    """The run's credentials and their hosts."""

    known: list[Credential] = field(default_factory=list)

    def add(self, name: str, value: str | None, urls: Iterable[str]) -> None:
        if value and value.strip():
            hosts = frozenset(h for h in (host_of(u) for u in urls) if h)
            self.known.append(Credential(name, value.strip(), hosts))

    def check(self, url: str, secret: str) -> None:
        """Raise unless every credential holding ``secret`` belongs to ``url``'s host."""
        host = host_of(url)
        if not host:
            return  # a local path (the local forge): nothing leaves the machine
        for credential in self.known:
            if credential.value == secret.strip() and host not in credential.hosts:
                owners = ", ".join(sorted(credential.hosts)) or "no host"
                raise CredentialError(
                    f"refusing to send {credential.name} to {host}: it belongs to {owners}",
                    "point the setting that names this variable at the service it is for, on "
                    "the workflow side (a repository's file cannot change it)",
                )


def for_run(
    env: Mapping[str, str],
    *,
    model: tuple[str | None, str] | None = None,
    sentry: tuple[str, str] | None = None,
) -> Credentials:
    """The credentials of a run: the forge tokens in ``env``, plus the model key
    (``(base_url, key variable)``) and the Sentry token (``(url, token variable)``) as the
    trusted configuration names them."""
    creds = Credentials()
    github = [env.get("GITHUB_API_URL") or GITHUB_HOSTS[0], env.get("GITHUB_SERVER_URL") or ""]
    if not env.get("GITHUB_API_URL"):
        github.append(GITHUB_HOSTS[1])
    for name in FORGE_TOKENS["github"]:
        creds.add(name, env.get(name), github)
    gitlab = env.get("CI_SERVER_URL") or GITLAB_URL
    for name in FORGE_TOKENS["gitlab"]:
        creds.add(name, env.get(name), [gitlab, env.get("CI_API_V4_URL") or ""])
    if model is not None:
        url, key_env = model
        creds.add(key_env, env.get(key_env), [url or OPENAI_URL])
    if sentry is not None:
        url, token_env = sentry
        creds.add(token_env, env.get(token_env), [url])
    return creds
