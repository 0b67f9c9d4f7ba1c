#!/usr/bin/env bash
# Install the AstraForge runner from the action's own checkout into a venv under RUNNER_TEMP,
# with the pinned versions of action/constraints.txt, using uv (from PyPI, which ships its
# binary). action.yml restores and saves uv's cache and the venv with actions/cache, keyed on
# the constraints, the OS and the Python version: a warm install reuses the venv or links
# from the cache. Used by action.yml; ASTRAFORGE_INSTALLER=pip uses pip instead.
set -euo pipefail

action_path=${ACTION_PATH:?ACTION_PATH is not set}
temp=${RUNNER_TEMP:?RUNNER_TEMP is not set}
venv=${ASTRAFORGE_VENV:-$temp/astraforge-venv}
python=${ASTRAFORGE_PYTHON:-python3}
uv_version=0.13.9
export UV_CACHE_DIR=${UV_CACHE_DIR:-$temp/astraforge-uv-cache}
export UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "::error::AstraForge needs Python 3.11 or newer; add actions/setup-python before it"
  exit 2
fi
# What was installed, and where: a venv restored to another path is made anew (its scripts
# name the path they were made at).
stamp=$( (echo "$venv"; cd "$action_path" && find pyproject.toml action/constraints.txt runner \
  prompts policies examples -type f -not -path '*/__pycache__/*' | sort | xargs cat) |
  sha256sum | cut -c1-16)
report_version() {  # the action's `version` output
  local version
  version=$("$venv/bin/python" -c 'import astraforge; print(astraforge.__version__)')
  echo "AstraForge $version"
  if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "version=$version" >> "$GITHUB_OUTPUT"; fi
}
if [ -x "$venv/bin/astraforge" ] && [ "$(cat "$venv/.astraforge-stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "AstraForge runner already installed in $venv"
  report_version
  exit 0
fi
echo "::group::Installing the AstraForge runner into $venv"
rm -rf "$venv"
if [ "${ASTRAFORGE_INSTALLER:-uv}" = pip ]; then
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --constraint "$action_path/action/constraints.txt" "$action_path"
else
  uv="$UV_CACHE_DIR/uv-$uv_version/bin/uv"
  if [ ! -x "$uv" ]; then  # uv itself, once, kept in its own cache
    "$python" -m pip install --quiet --disable-pip-version-check --no-compile \
      --target "$UV_CACHE_DIR/uv-$uv_version" "uv==$uv_version"
  fi
  "$uv" venv --quiet --python "$python" "$venv"
  "$uv" pip install --quiet --python "$venv/bin/python" \
    --constraint "$action_path/action/constraints.txt" "$action_path"
fi
echo "$stamp" > "$venv/.astraforge-stamp"
echo "::endgroup::"
report_version
