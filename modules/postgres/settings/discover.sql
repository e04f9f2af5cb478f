{# One row per wanted parameter. `value` is what the configuration says: the
   last line for the parameter in the configuration files (where ALTER SYSTEM
   writes), or the running value when no file sets it. A parameter that needs
   a restart shows its new value here and `pendingRestart` until then. #}
SELECT coalesce(json_agg(row_to_json(parameters) ORDER BY parameters.identity), '[]'::json)
FROM (
    SELECT s.name AS identity,
           coalesce(f.setting, current_setting(s.name)) AS value,
           s.context,
           s.unit,
           s.vartype,
           s.pending_restart AS "pendingRestart"
    FROM pg_settings s
    LEFT JOIN LATERAL (
        SELECT fs.setting
        FROM pg_file_settings fs
        WHERE fs.name = s.name
        ORDER BY fs.seqno DESC
        LIMIT 1
    ) f ON true
    WHERE {% if names %}s.name IN ({{ names|literal_list }}){% else %}false{% endif %}

) parameters
