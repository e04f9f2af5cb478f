{# One row per wanted parameter. `value` is what the configuration says: the
   last line for the parameter in the configuration files (where ALTER SYSTEM
   writes), else the server-wide value. A session's own values (fleetform's
   statement_timeout, a role's or database's SET) are not the server's, so
   for those the built-in default stands in. A parameter that needs a restart
   shows its new value here and `pendingRestart` until then. pg_file_settings
   is readable by superusers only; without it the running value is used. #}
SELECT coalesce(json_agg(row_to_json(parameters) ORDER BY parameters.identity), '[]'::json)
FROM (
    SELECT s.name AS identity,
           coalesce(
{% if is_superuser %}
               f.setting,
{% endif %}
               CASE WHEN s.source IN ('client', 'user', 'database', 'session')
                    THEN s.boot_val
{% if is_superuser %}
                    {# No file sets it any more (a reset) while the server
                       waits for a restart: the next start takes the built-in value. #}
                    WHEN s.pending_restart THEN s.boot_val
{% endif %}
                    ELSE current_setting(s.name) END) AS value,
           s.context,
           s.unit,
           s.vartype,
           s.pending_restart AS "pendingRestart",
           s.source IN ('command line', 'environment variable', 'override') AS overridden,
           {# Lists whose elements PostgreSQL quotes one by one: written as
              several literals, compared element by element. #}
           s.name IN ('shared_preload_libraries', 'session_preload_libraries',
                      'local_preload_libraries', 'search_path', 'temp_tablespaces',
                      'unix_socket_directories') AS "isList",
           {# Written with ALTER SYSTEM (what a prune resets); unknown without
              superuser. `fileValue`: what the files other than
              postgresql.auto.conf set (what a reset leaves), for lists only;
              `libraries`: the libraries in the server's library directory,
              for shared_preload_libraries only. #}
{% if is_superuser %}
           CASE WHEN s.name IN ('shared_preload_libraries', 'session_preload_libraries',
                                'local_preload_libraries', 'search_path', 'temp_tablespaces',
                                'unix_socket_directories')
                THEN (SELECT nullif(fs.setting, '') FROM pg_file_settings fs
                      WHERE fs.name = s.name AND fs.sourcefile NOT LIKE '%/postgresql.auto.conf'
                      ORDER BY fs.seqno DESC LIMIT 1) END AS "fileValue",
           CASE WHEN s.name = 'shared_preload_libraries'
                THEN (SELECT coalesce(json_agg(left(f, -3)), '[]'::json)
                      FROM pg_ls_dir((SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR')) f
                      WHERE f LIKE '%.so') END AS libraries,
           EXISTS (SELECT 1 FROM pg_file_settings fs
                   WHERE fs.name = s.name AND fs.sourcefile LIKE '%/postgresql.auto.conf') AS "inAutoConf"
{% else %}
           NULL::text AS "fileValue",
           NULL::json AS libraries,
           NULL::boolean AS "inAutoConf"
{% endif %}
    FROM pg_settings s
{% if is_superuser %}
    LEFT JOIN LATERAL (
        SELECT fs.setting
        FROM pg_file_settings fs
        WHERE fs.name = s.name
        ORDER BY fs.seqno DESC
        LIMIT 1
    ) f ON true
{% endif %}
    WHERE {% if names %}s.name IN ({{ names|literal_list }}){% else %}false{% endif %}

) parameters
