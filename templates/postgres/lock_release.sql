SELECT json_build_object('released', pg_advisory_unlock({{ lock_key }}))
