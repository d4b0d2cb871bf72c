# Shared by scripts/run and scripts/test. Sourced, not executed.

# uv, installed with the project's Python (3.13 through .python-version) when it is missing.
# Called as "python3 -m uv" so a pyenv shim that was never rehashed does not matter.
uv() {
  if ! python3 -m uv --version >/dev/null 2>&1; then
    echo "Installing uv with $(python3 --version)…" >&2
    python3 -m pip install --quiet --disable-pip-version-check uv >&2
  fi
  python3 -m uv "$@"
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Install the Debian packages named in $@ that are missing (dpkg-query tells).
apt_ensure() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing Debian packages: ${missing[*]}" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# What scripts/engine (rootful Podman serving the Docker API) and scripts/agent-image need.
ENGINE_PACKAGES=(podman runc conmon netavark aardvark-dns iptables catatonit mmdebstrap)

# `git status --porcelain` with every untracked file listed; empty outside a git work tree.
checkout_state() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git status --porcelain --untracked-files=all | sort || true
  fi
}

# Fail, listing them, when `git status` has entries that were not in $1 (an earlier
# checkout_state).
checkout_unchanged() {
  local added
  added=$(comm -13 <(printf '%s\n' "$1") <(checkout_state) | sed '/^$/d')
  if [ -n "$added" ]; then
    echo "The test run left files in the checkout (write them under tmp_path or var/ instead):" >&2
    printf '%s\n' "$added" >&2
    return 1
  fi
}
