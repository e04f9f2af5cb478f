{# What every module may need to know about the server. #}
SELECT json_build_object(
    'server_version_num', current_setting('server_version_num')::int,
    'server_version', current_setting('server_version'),
    'is_superuser', (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
    'in_recovery', pg_is_in_recovery()
)
