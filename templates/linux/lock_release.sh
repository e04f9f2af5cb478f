{# Release the apply lock of a host, if this fleetform process holds it. #}
set -eu
lock={{ server.state_directory }}/lock
if [ "$(cat "$lock/owner" 2>/dev/null || true)" = {{ fleetform_pid }} ]; then
    rm -rf "$lock"
fi
echo '{"released": true}'
