{# Every replication slot of the instance (the view is cluster-wide). #}
SELECT coalesce(json_agg(row_to_json(slots) ORDER BY slots.identity), '[]'::json)
FROM (
    SELECT s.slot_name AS identity,
           s.slot_type AS type,
           s.plugin,
           s.database,
{% if server_version_num >= 140000 %}
           coalesce(s.two_phase, false) AS "twoPhase",
{% else %}
           false AS "twoPhase",
{% endif %}
           s.temporary,
           s.active,
           {# On a standby the current position is the last replayed one. #}
           pg_size_pretty(pg_wal_lsn_diff(
               CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
               s.restart_lsn)) AS "retainedWal"
    FROM pg_replication_slots s
) slots
