#!/bin/sh
# requires.sh NEED... -- COMMAND...: runs COMMAND when every NEED is here;
# otherwise says what is missing and exits 77, which ctest counts as skipped.
#   py:MODULE   a module of Debian's /usr/bin/python3 (py:zmq is python3-zmq)
#   cmd:NAME    a program on PATH
# ./dev test installs all of them; a bare `ctest` on a machine without them
# skips what it cannot run instead of failing it.
missing=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    case $1 in
    py:*)
        m=${1#py:}
        if [ ! -x /usr/bin/python3 ]; then
            missing="$missing /usr/bin/python3 (Debian's python3)"
        elif ! /usr/bin/python3 -c "import $m" 2>/dev/null; then
            missing="$missing python3-$m (Debian's, for /usr/bin/python3)"
        fi
        ;;
    cmd:*)
        command -v "${1#cmd:}" >/dev/null 2>&1 || missing="$missing ${1#cmd:}"
        ;;
    *)
        echo "requires.sh: unknown need $1" >&2
        exit 2
        ;;
    esac
    shift
done
[ "${1:-}" = "--" ] && shift
if [ -n "$missing" ]; then
    echo "skipped: missing$missing (./dev test installs it)"
    exit 77
fi
exec "$@"
