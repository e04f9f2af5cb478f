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
           pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)) AS "retainedWal"
    FROM pg_replication_slots s
) slots
