#!/usr/bin/env bash
# Install the AstraForge runner from the action's own checkout into a venv under RUNNER_TEMP,
# with the pinned versions of action/constraints.txt. Used by action.yml.
set -euo pipefail

action_path=${ACTION_PATH:?ACTION_PATH is not set}
venv="${RUNNER_TEMP:?RUNNER_TEMP is not set}/astraforge-venv"
python=${ASTRAFORGE_PYTHON:-python3}

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "::error::AstraForge needs Python 3.11 or newer; add actions/setup-python before it"
  exit 2
fi
stamp=$(cd "$action_path" && find pyproject.toml action/constraints.txt runner prompts \
  policies examples -type f -not -path '*/__pycache__/*' | sort | xargs cat | sha256sum | cut -c1-16)
if [ -x "$venv/bin/astraforge" ] && [ "$(cat "$venv/.astraforge-stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "AstraForge runner already installed in $venv"
else
  echo "::group::Installing the AstraForge runner into $venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --constraint "$action_path/action/constraints.txt" "$action_path"
  echo "$stamp" > "$venv/.astraforge-stamp"
  echo "::endgroup::"
fi
"$venv/bin/astraforge" --version
