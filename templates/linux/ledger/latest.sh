{# The last converged entry of each resource of the environment, and the
   `started` entries no outcome followed (interrupted), as one JSON list
   ([] without a ledger). #}
set -eu
latest={{ server.state_directory }}/ledger/{{ environment }}/latest
printf '['
separator=
if [ -d "$latest" ]; then
    for entry in "$latest"/*.json "$latest"/*.started; do
        [ -f "$entry" ] || continue
        printf '%s' "$separator"
        cat "$entry"
        separator=,
    done
fi
printf ']\n'
