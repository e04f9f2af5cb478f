{# What every module may need to know about the server. The data directory is
   readable by superusers and members of pg_read_all_settings only. #}
SELECT json_build_object(
    'server_version_num', current_setting('server_version_num')::int,
    'server_version', current_setting('server_version'),
    {# Tells this server from any other (pg_control_system is executable by
       everyone unless revoked; then unknown). #}
    'system_identifier', CASE WHEN has_function_privilege('pg_control_system()', 'EXECUTE')
                              THEN (SELECT system_identifier::text FROM pg_control_system()) END,
    'started_at', pg_postmaster_start_time(),
    'is_superuser', (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
    'in_recovery', pg_is_in_recovery(),
    'wal_level', current_setting('wal_level'),
    'databases', (SELECT json_agg(datname ORDER BY datname) FROM pg_database WHERE datallowconn),
    'data_directory', CASE WHEN pg_has_role(current_user, 'pg_read_all_settings', 'MEMBER')
                           THEN current_setting('data_directory') END
)
