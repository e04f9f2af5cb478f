{# Waits for the apply lock, at most lock_timeout. #}
SELECT json_build_object('acquired', pg_advisory_lock({{ lock_key }}) IS NOT NULL)
