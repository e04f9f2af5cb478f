{# Wait for the apply lock of a host at most lock_timeout_ms, trying once a
   second (the same rules as lock_try.sh). Prints {"acquired": true|false}. #}
set -eu
state={{ server.state_directory }}
lock="$state/lock"
mkdir -p "$state"
deadline=$(( $(date +%s) + ({{ lock_timeout_ms }} + 999) / 1000 ))
while :; do
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
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo '{"acquired": false}'
        exit 0
    fi
    sleep 1
done
