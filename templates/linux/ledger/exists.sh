{# Whether the host's ledger of this environment exists. #}
set -eu
if [ -d {{ server.state_directory }}/ledger/{{ environment }} ]; then
    echo '{"exists": true}'
else
    echo '{"exists": false}'
fi
