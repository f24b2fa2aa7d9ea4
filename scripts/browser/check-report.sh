#!/usr/bin/env bash
# Checks a voicebench HTML report in a real headless browser, for CI and by hand:
# opens DIR/index.html over file:// in Debian chromium (1280x900 viewport, full-page
# screenshot) and fails on console errors, uncaught exceptions, failed requests, images that
# did not load, recordings that do not open, any request that is not file:// or data:, broken local links, a blank
# screenshot, or no <h1>. Installs chromium and playwright-core first (install.sh).
# Usage: scripts/browser/check-report.sh DIR [SCREENSHOT.png]
# Exit: 0 the page is fine (one line of facts), 1 the check failed (what failed), 2 usage.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
start_ms="$(date +%s%3N)"

usage() {
    echo "check-report: $1" >&2
    echo "usage: scripts/browser/check-report.sh DIR [SCREENSHOT.png]" >&2
    echo "  DIR: a report directory holding index.html (and plots/, CSV/JSON files beside it)" >&2
    echo "  SCREENSHOT.png: where to write the full-page screenshot (optional)" >&2
    exit 2
}

[ "$#" -ge 1 ] && [ "$#" -le 2 ] || usage "expected DIR [SCREENSHOT.png], got $# argument(s)"
[ -d "$1" ] || usage "not a directory: $1"
[ -f "$1/index.html" ] || usage "no index.html in $1 (pass the report directory that holds index.html)"
[ "$#" -lt 2 ] || [[ "$2" == *.png ]] || usage "screenshot path must end in .png: $2"

"$here/install.sh"

CHECK_START_MS="$start_ms" exec node "$here/check-report.mjs" "$@"
