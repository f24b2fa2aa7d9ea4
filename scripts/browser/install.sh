#!/usr/bin/env bash
# Installs what scripts/browser/check-report.sh needs to open a report page in a real
# headless browser: Debian's chromium (/usr/bin/chromium) and, from the npm registry, the
# pinned playwright-core in package-lock.json (into scripts/browser/node_modules, git-ignored).
# Idempotent: each step is skipped when what it installs is already there; `apt-get update`
# runs only when an apt install is needed and fails on the package lists the machine has.
# playwright-core never downloads a browser of its own: it drives the system chromium.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export DEBIAN_FRONTEND=noninteractive

# Run as root directly, else through sudo when there is one.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo DEBIAN_FRONTEND=noninteractive "$@"
    else
        echo "install.sh: need root (or sudo) to run: $*" >&2
        exit 1
    fi
}

# apt-get install the given packages; on failure (no candidate, stale lists -> 404),
# refresh the package lists once and try again.
apt_install() {
    local opts=(-y -q --no-install-recommends)
    if ! as_root apt-get install "${opts[@]}" "$@"; then
        echo "install.sh: apt-get install failed; running apt-get update and retrying" >&2
        as_root apt-get update -q
        as_root apt-get install "${opts[@]}" "$@"
    fi
}

need_apt=()
chromium_bin="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$chromium_bin" ]; then
    # fonts-dejavu-core: a page's text must render even on a machine with no fonts at all.
    need_apt+=(chromium fonts-dejavu-core)
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    need_apt+=(nodejs npm)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "install.sh: installing from Debian: ${need_apt[*]}" >&2
    apt_install "${need_apt[@]}"
fi

# playwright-core at the exact version package.json pins, skipped when node_modules has it.
want="$(node -p "require('$here/package.json').dependencies['playwright-core']")"
have="$(node -p "try { require('$here/node_modules/playwright-core/package.json').version } catch (e) { '' }")"
if [ "$have" != "$want" ]; then
    echo "install.sh: npm ci (playwright-core $want) in $here" >&2
    (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
