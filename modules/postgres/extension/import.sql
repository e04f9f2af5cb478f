{# Every extension installed in the database, as a manifest spec. #}
SELECT coalesce(json_agg(json_build_object('name', e.extname, 'spec', json_build_object(
           'name', e.extname,
           'version', e.extversion,
           'schema', n.nspname
       )) ORDER BY e.extname), '[]'::json)
FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace
