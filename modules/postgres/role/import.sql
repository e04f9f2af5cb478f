{# Every role outside the pg_ roles, as a manifest spec (passwords are never
   read: they stay unmanaged until the manifest names a secret). #}
SELECT coalesce(json_agg(json_build_object('name', r.rolname, 'spec', json_strip_nulls(json_build_object(
           'name', r.rolname,
           'login', r.rolcanlogin,
           'superuser', r.rolsuper,
           'createDatabase', r.rolcreatedb,
           'createRole', r.rolcreaterole,
           'inherit', r.rolinherit,
           'replication', r.rolreplication,
           'bypassRowLevelSecurity', r.rolbypassrls,
           'connectionLimit', r.rolconnlimit,
           'validUntil', CASE WHEN r.rolvaliduntil IS NULL OR r.rolvaliduntil = 'infinity' THEN NULL
                              ELSE to_char(r.rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') END,
           'memberOf', coalesce((SELECT json_agg(DISTINCT g.rolname)
                                 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                                 WHERE m.member = r.oid), '[]'::json),
           'comment', marked.comment
       ))) ORDER BY r.rolname), '[]'::json)
FROM pg_roles r
CROSS JOIN LATERAL (SELECT shobj_description(r.oid, 'pg_authid') AS text OFFSET 0) described
CROSS JOIN LATERAL ({% include "templates/postgres/ownership.sql" %}) marked
WHERE r.rolname !~ '^pg_'
