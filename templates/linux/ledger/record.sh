{# Record one outcome: appended to the history; a `started` row is kept
   beside the latest entries until its run records the outcome; a converged
   one also replaces the resource's latest entry (written beside it, then renamed,
   so a reader never sees half of it). Items the manifests dropped are not
   carried over from the previous entry here (the SQL ledgers do that):
   host kinds with items are not built yet. #}
set -eu
ledger={{ server.state_directory }}/ledger/{{ environment }}
file={{ entry_file }}
printf '%s\n' {{ entry|json_text }} >> "$ledger/history.jsonl"
{% if result == "started" %}
{# Until its run records an outcome: an interrupted apply was converging it. #}
printf '%s\n' {{ entry|json_text }} > "$ledger/latest/.$file.tmp"
mv "$ledger/latest/.$file.tmp" "$ledger/latest/$file".{{ run_id }}.started
{% else %}
rm -f "$ledger/latest/$file".{{ run_id }}.started
{% endif %}
{% if result == "converged" %}
printf '%s\n' {{ entry|json_text }} > "$ledger/latest/.$file.tmp"
mv "$ledger/latest/.$file.tmp" "$ledger/latest/$file.json"
rm -f "$ledger/latest/$file".*.started
{% endif %}
