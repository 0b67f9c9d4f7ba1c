"""Where each setting may come from, by trust.

- **Trusted** (the workflow side): command-line flags, the environment (action inputs and
  GitLab template inputs arrive this way) and a settings file named by
  ``ASTRAFORGE_SETTINGS_FILE``. They may set everything.
- **The repository's file** (``.astraforge.yml``, or the file ``ASTRAFORGE_CONFIG_FILE``
  names) is read from the default branch's base commit through git, never from a working
  tree. It may set only what cannot leak a secret or loosen a limit: every key in
  :data:`TRUSTED` is ignored there with one warning line saying where to set it instead; a
  model name counts only when the workflow's ``model.allowed`` lists it; budgets may only go
  down.

Precedence, highest first: flags > environment > settings file > repository file > defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from astraforge import git
from astraforge.config.model import Budgets, Config
from astraforge.errors import ConfigError, pydantic_error

if TYPE_CHECKING:
    from astraforge.policy import Policy

CONFIG_FILES = (".astraforge.yml", ".astraforge.yaml")
MAX_CONFIG_BYTES = 1024 * 1024
CONFIG_FILE_ENV = "ASTRAFORGE_CONFIG_FILE"
# Defaults a CI integration brings (the action: its release's sandbox image); anything a
# repository's file, the environment or a flag says wins over them.
DEFAULT_FIELDS: dict[str, str] = {"ASTRAFORGE_DEFAULT_SANDBOX_IMAGE": "sandbox.image"}
SETTINGS_FILE_ENV = "ASTRAFORGE_SETTINGS_FILE"

# Environment variables (action inputs and GitLab template inputs pass through these).
ENV_FIELDS: dict[str, str] = {
    "ASTRAFORGE_TRIGGER_LABEL": "trigger.label",
    "ASTRAFORGE_TRIGGER_PHRASE": "trigger.command",
    "ASTRAFORGE_MODEL": "model.name",
    "ASTRAFORGE_ALLOWED_MODELS": "model.allowed",
    "OPENAI_BASE_URL": "model.base_url",
    "ASTRAFORGE_OPENAI_BASE_URL": "model.base_url",
    "ASTRAFORGE_MODEL_API": "model.api",
    "ASTRAFORGE_MODEL_API_VERSION": "model.api_version",
    "ASTRAFORGE_MODEL_API_KEY_ENV": "model.api_key_env",
    "SENTRY_URL": "context.sentry_url",
    "ASTRAFORGE_SENTRY_TOKEN_ENV": "context.sentry_token_env",
    "ASTRAFORGE_PERSONAL_DATA": "context.personal_data",
    "ASTRAFORGE_ENGINE": "engine",
    "ASTRAFORGE_BACKEND": "sandbox.backend",
    "ASTRAFORGE_SANDBOX_IMAGE": "sandbox.image",
    "ASTRAFORGE_SANDBOX_INCLUDE": "sandbox.include",
    "ASTRAFORGE_NETWORK": "sandbox.network",
    "ASTRAFORGE_ALLOW": "sandbox.allow",
    "ASTRAFORGE_ALLOW_PRIVATE": "sandbox.allow_private",
    "ASTRAFORGE_MODEL_RESPONSES": "model.responses",
    "ASTRAFORGE_POLICY_FILE": "base_policy",
    "ASTRAFORGE_MAX_TURNS": "budgets.max_turns",
    "ASTRAFORGE_MAX_COST_USD": "budgets.max_cost_usd",
    "ASTRAFORGE_TIMEOUT_MINUTES": "budgets.timeout_minutes",
    "ASTRAFORGE_DRAFT": "publish.draft",
    "ASTRAFORGE_DRY_RUN": "dry_run",
    "ASTRAFORGE_ON_UNVERIFIED": "on_unverified",
    "ASTRAFORGE_FOLLOW_UP_ANY_PR": "follow_up.any_pr",
    "ASTRAFORGE_CI_FIX_MAX_ROUNDS": "ci_fix.max_rounds",
    "ASTRAFORGE_CI_FIX_WORKFLOWS": "ci_fix.workflows",
    "ASTRAFORGE_CI_FIX_DEFAULT_BRANCH": "ci_fix.default_branch",
}
# Variables holding comma-separated lists.
LIST_FIELDS = {
    "model.allowed",
    "context.personal_data",
    "sandbox.include",
    "sandbox.allow",
    "sandbox.allow_private",
    "ci_fix.workflows",
}

_SETTINGS = f"a settings file named by {SETTINGS_FILE_ENV}"
# Keys a repository's own file may not set, and where the workflow side sets them instead.
TRUSTED: dict[str, str] = {
    "model.base_url": "the action input openai_base_url, or OPENAI_BASE_URL",
    "model.api": "ASTRAFORGE_MODEL_API",
    "model.api_version": "ASTRAFORGE_MODEL_API_VERSION",
    "model.api_key_env": "ASTRAFORGE_MODEL_API_KEY_ENV",
    "model.responses": "ASTRAFORGE_MODEL_RESPONSES",
    "model.extra_headers": _SETTINGS,
    "model.prices": _SETTINGS,
    "model.allowed": "the action input allowed_models, or ASTRAFORGE_ALLOWED_MODELS",
    "context.sentry_url": "SENTRY_URL",
    "context.sentry_token_env": "ASTRAFORGE_SENTRY_TOKEN_ENV",
    "context.personal_data": "ASTRAFORGE_PERSONAL_DATA",
    "engine": "the action input engine, or ASTRAFORGE_ENGINE",
    "sandbox.include": "ASTRAFORGE_SANDBOX_INCLUDE",
    "sandbox.network": "the action input network, --network, or ASTRAFORGE_NETWORK",
    "sandbox.allow": "the action input allow, --allow, or ASTRAFORGE_ALLOW",
    "sandbox.allow_private": "--allow-private, or ASTRAFORGE_ALLOW_PRIVATE",
    "base_policy": "ASTRAFORGE_POLICY_FILE",
    "on_unverified": "the action input on_unverified, or ASTRAFORGE_ON_UNVERIFIED",
    "follow_up.any_pr": "ASTRAFORGE_FOLLOW_UP_ANY_PR",
    "ci_fix.max_rounds": "ASTRAFORGE_CI_FIX_MAX_ROUNDS",
    "ci_fix.workflows": "the action input ci_workflows, or ASTRAFORGE_CI_FIX_WORKFLOWS",
    "ci_fix.default_branch": "ASTRAFORGE_CI_FIX_DEFAULT_BRANCH",
}


def _set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[leaf] = value


def _get_path(data: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _pop_path(data: dict[str, Any], dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(leaf, None)


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_yaml(text: str, origin: str) -> dict[str, Any]:
    """A YAML mapping, or one ConfigError naming the file, the reason and the position."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(
            f"{origin}: invalid YAML{where}: {problem}", "fix the YAML syntax"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{origin}: the configuration must be a mapping, got {type(data).__name__}"
        )
    return data


def read_file(path: Path) -> dict[str, Any]:
    """A configuration file from disk."""
    try:
        raw = path.read_bytes()[: MAX_CONFIG_BYTES + 1]
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the configuration file ({exc.strerror})",
            f"pass an existing file with --config or {CONFIG_FILE_ENV}",
        ) from None
    return parse_yaml(_decode(raw, str(path)), str(path))


def _decode(raw: bytes, origin: str) -> str:
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{origin}: configuration file is larger than 1 MiB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{origin}: not UTF-8", "save the file as UTF-8") from None


def env_overrides(env: Mapping[str, str], fields: Mapping[str, str] = ENV_FIELDS) -> dict[str, Any]:
    """The settings the environment gives; empty variables count as unset."""
    overrides: dict[str, Any] = {}
    for name, dotted in fields.items():
        value = env.get(name, "").strip()
        if value:
            if dotted in LIST_FIELDS:
                items = [v.strip() for v in value.replace("\n", ",").split(",")]
                _set_path(overrides, dotted, [v for v in items if v])
            else:
                _set_path(overrides, dotted, value)
    return overrides


def validate(data: Mapping[str, Any], origin: str) -> Config:
    """The configuration ``data`` describes, or one ConfigError naming ``origin``."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(pydantic_error(exc, origin, Config)) from None


def _env_origin(data: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """Which variable set a field that failed validation, for the error message."""
    names = [n for n, dotted in ENV_FIELDS.items() if env.get(n, "").strip()]
    return "environment (" + ", ".join(names) + ")" if names else "environment"


def _repository_file(
    repo: Path | None, named: Path | None, env: Mapping[str, str]
) -> tuple[dict[str, Any], str]:
    """The repository's configuration file, from the base commit when ``repo`` is a checkout."""
    if named is not None and (repo is None or named.is_absolute()):
        inside = repo is not None and named.resolve().is_relative_to(repo.resolve())
        if not inside:
            if not named.is_file():
                raise _not_found(named)
            return read_file(named), str(named)
        assert repo is not None
        named = named.resolve().relative_to(repo.resolve())
    if repo is None:
        return {}, "defaults"
    commit = git.trusted_commit(repo, env)
    candidates = [named.as_posix()] if named is not None else list(CONFIG_FILES)
    for name in candidates:
        if commit is not None:
            raw = git.show_file(repo, commit, name, MAX_CONFIG_BYTES + 1)
            if raw is None:
                continue
            origin = f"{name} (base commit {commit[:12]})"
            return parse_yaml(_decode(raw, origin), origin), origin
        path = repo / name
        if path.is_file() and not path.is_symlink():
            return read_file(path), str(path)
    if named is not None:
        raise _not_found(repo / named)
    return {}, "defaults"


def _not_found(path: Path) -> ConfigError:
    return ConfigError(
        f"{path}: configuration file not found (in the default branch's base commit)",
        "commit it to the default branch (`astraforge config schema` lists the fields), or "
        f"drop --config / {CONFIG_FILE_ENV}",
    )


def _untrusted(
    data: dict[str, Any], origin: str, trusted: Config
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(what the repository's file may set, its budgets, warnings)."""
    kept = _merge({}, data)
    warnings: list[str] = []
    for dotted, where in TRUSTED.items():
        present, _ = _get_path(kept, dotted)
        if present:
            _pop_path(kept, dotted)
            warnings.append(
                f"{origin}: {dotted} is a trusted setting that a repository cannot set; "
                f"ignored (set it on the workflow side: {where})"
            )
    present, name = _get_path(kept, "model.name")
    if present and name not in trusted.model.allowed:
        _pop_path(kept, "model.name")
        warnings.append(
            f"{origin}: model.name {name!r} is not on the workflow's list of allowed models; "
            f"ignored (add it to {TRUSTED['model.allowed']})"
        )
    budgets = kept.pop("budgets", None) or {}
    for key, value in list(budgets.items()):
        limit = getattr(trusted.budgets, key)
        if value > limit:
            del budgets[key]
            warnings.append(
                f"{origin}: budgets.{key} {value} is above the workflow's {limit}; a repository "
                "may only lower budgets; ignored (raise it on the workflow side)"
            )
    return kept, budgets, warnings


def load(
    repo: Path | None = None,
    *,
    file: Path | None = None,
    env: Mapping[str, str] | None = None,
    cli: Mapping[str, Any] | None = None,
) -> Config:
    """The configuration: defaults, the repository's file, the settings file, the environment
    and flags. ``cli`` maps dotted field names to values; None values are ignored. Ignored
    settings of the repository's file are listed in ``Config.warnings``."""
    env = env if env is not None else {}
    trusted: dict[str, Any] = {}
    origin = "defaults"
    if env.get(SETTINGS_FILE_ENV, "").strip():
        settings = Path(env[SETTINGS_FILE_ENV].strip())
        trusted, origin = read_file(settings), str(settings)
        validate(trusted, origin)
    trusted = _merge(trusted, env_overrides(env))
    try:
        Config.model_validate(trusted)
    except ValidationError as exc:
        raise ConfigError(pydantic_error(exc, _env_origin(trusted, env), Config)) from None
    flags: dict[str, Any] = {}
    for dotted, value in (cli or {}).items():
        if value is not None:
            _set_path(flags, dotted, value)
    trusted_config = validate(_merge(trusted, flags), "command-line flags")

    named = file or (Path(env[CONFIG_FILE_ENV]) if env.get(CONFIG_FILE_ENV, "").strip() else None)
    data, repo_origin = _repository_file(repo, named, env)
    validate(data, repo_origin)  # name the file when the file itself is wrong
    kept, budgets, warnings = _untrusted(data, repo_origin, trusted_config)
    merged = _merge(_merge(_merge(env_overrides(env, DEFAULT_FIELDS), kept), trusted), flags)
    config = validate(merged, f"{repo_origin} + environment + flags")
    if budgets:
        lowered = config.budgets.model_dump() | budgets
        config = config.model_copy(update={"budgets": Budgets.model_validate(lowered)})
    if kept.get("dry_run") is True:
        config = config.model_copy(update={"dry_run": True})  # a repository may only tighten
    config._warnings = warnings
    return config


def load_policy(repo: Path | None, config: Config, env: Mapping[str, str]) -> Policy:
    """The trusted policy (``base_policy`` or the bundled default), tightened by the
    repository's own policy file read from the base commit, with the files the repository's
    CI configuration includes protected too. Refused loosenings are added to
    ``config.warnings``."""
    from astraforge import policy

    base = policy.load_file(Path(config.base_policy)) if config.base_policy else policy.default()
    base = policy.with_network(base, config.sandbox.network, config.sandbox.allow)
    commit = git.trusted_commit(repo, env) if repo is not None else None
    if not config.policy:
        return _with_ci_includes(repo, commit, base)
    if repo is None:
        raise ConfigError(f"policy file {config.policy} needs the repository", "pass --repo")
    raw = git.show_file(repo, commit, config.policy, MAX_CONFIG_BYTES) if commit else None
    if raw is None:
        raise ConfigError(
            f"policy file {config.policy} is not in the repository's base commit",
            "commit it to the default branch, or remove `policy:` from .astraforge.yml",
        )
    own = policy.parse(raw.decode("utf-8", "replace"), f"{config.policy} (base commit)")
    merged, refused = policy.tighten(base, own)
    config.warnings.extend(
        f"{config.policy} (base commit): {what}; ignored (a repository's policy may only "
        f"tighten the trusted one: set it in the file {TRUSTED['base_policy']} names)"
        for what in refused
    )
    return _with_ci_includes(repo, commit, merged)


def _with_ci_includes(repo: Path | None, commit: str | None, rules: Policy) -> Policy:
    """``rules`` with the files the repository's GitLab CI configuration includes locally
    protected too: changing them changes what CI runs."""
    if repo is None or commit is None:
        return rules
    extra = [p for p in ci_includes(repo, commit) if p not in rules.paths.protected]
    if not extra:
        return rules
    paths = rules.paths.model_copy(update={"protected": [*rules.paths.protected, *extra]})
    return rules.model_copy(update={"paths": paths})


def ci_includes(repo: Path, commit: str, limit: int = 50) -> list[str]:
    """The files ``.gitlab-ci.yml`` includes with ``include: local:`` (and what those include),
    as committed at ``commit``, as anchored globs."""
    seen: list[str] = []
    queue = [".gitlab-ci.yml"]
    while queue and len(seen) < limit:
        raw = git.show_file(repo, commit, queue.pop(0), MAX_CONFIG_BYTES)
        try:
            data = yaml.safe_load(raw.decode("utf-8", "replace")) if raw else None
        except yaml.YAMLError:
            continue
        include = data.get("include") if isinstance(data, dict) else None
        items = include if isinstance(include, list) else [include] if include else []
        for item in items:
            local = item.get("local") if isinstance(item, dict) else item
            if isinstance(local, str) and "://" not in local and "$" not in local:
                path = "/" + local.strip().lstrip("/")
                if path not in seen:
                    seen.append(path)
                    queue.append(path.lstrip("/"))
    return seen
