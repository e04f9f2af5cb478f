{# The host's ledger of an environment: latest/ holds the last converged
   entry of each resource (one JSON file per resource, named by a hash of
   its address), history.jsonl every entry in order. #}
set -eu
ledger={{ server.state_directory }}/ledger/{{ environment }}
mkdir -p "$ledger/latest"
touch "$ledger/history.jsonl"
test -w "$ledger/history.jsonl"
