{# The apply lock of an instance: a session-level advisory lock. #}
SELECT json_build_object('acquired', pg_try_advisory_lock({{ lock_key }}))
