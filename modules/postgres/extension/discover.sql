{# One row per extension the server can install, whether or not it is
   installed in this database. #}
SELECT coalesce(json_agg(row_to_json(extensions) ORDER BY extensions.identity), '[]'::json)
FROM (
    SELECT a.name AS identity,
           e.oid IS NOT NULL AS installed,
           e.extversion AS version,
           n.nspname AS schema,
           a.default_version AS "defaultVersion",
           a.comment AS "defaultComment",
           (SELECT json_agg(v.version ORDER BY v.version)
            FROM pg_available_extension_versions v WHERE v.name = a.name) AS "availableVersions",
           e.extrelocatable AS relocatable,
           marked.comment,
           coalesce(marked.owned, false) AS owned,
           marked."ownedBy",
           marked."markerLine"
    FROM pg_available_extensions a
    LEFT JOIN pg_extension e ON e.extname = a.name
    LEFT JOIN pg_namespace n ON n.oid = e.extnamespace
    LEFT JOIN LATERAL (SELECT obj_description(e.oid, 'pg_extension') AS text OFFSET 0) described ON e.oid IS NOT NULL
    LEFT JOIN LATERAL ({% include "templates/postgres/ownership.sql" %}) marked ON e.oid IS NOT NULL
) extensions
