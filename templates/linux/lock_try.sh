{# The apply lock of a host: a directory in the Server's state directory,
   created atomically (mkdir), holding its owner (this fleetform process).
   A lock whose owner process no longer runs on this machine is stale and
   is taken over. Prints {"acquired": true|false}. #}
set -eu
state={{ server.state_directory }}
lock="$state/lock"
mkdir -p "$state"
if mkdir "$lock" 2>/dev/null; then
    printf '%s\n' {{ fleetform_pid }} > "$lock/owner"
    echo '{"acquired": true}'
    exit 0
fi
owner=$(cat "$lock/owner" 2>/dev/null || true)
if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null; then
    printf '%s\n' {{ fleetform_pid }} > "$lock/owner"
    echo '{"acquired": true}'
    exit 0
fi
echo '{"acquired": false}'
