{# The explicit privileges in the database, grouped into grants: per grantee,
   object type, schema, privilege set and grant option, the objects that
   share them. Owners' own privileges are implicit and left out, and so are
   objects whose ACL was never set (they hold the built-in defaults). #}
WITH entries AS (
    SELECT 'database' AS type, NULL::name AS schema, d.datname::text AS object, d.datdba AS owner, a.*
    FROM pg_database d, aclexplode(d.datacl) a
    WHERE d.datname = current_database() AND d.datacl IS NOT NULL
    UNION ALL
    SELECT 'schema', NULL, n.nspname, n.nspowner, a.*
    FROM pg_namespace n, aclexplode(n.nspacl) a
    WHERE n.nspacl IS NOT NULL AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
    UNION ALL
    SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END, n.nspname, c.relname, c.relowner, a.*
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
    WHERE c.relacl IS NOT NULL AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
    UNION ALL
    {# Routines by signature, which names exactly one overload. #}
    SELECT CASE WHEN p.prokind = 'p' THEN 'procedure' ELSE 'function' END, n.nspname,
           p.proname || '(' || oidvectortypes(p.proargtypes) || ')', p.proowner, a.*
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, aclexplode(p.proacl) a
    WHERE p.proacl IS NOT NULL AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
    UNION ALL
    SELECT 'type', n.nspname, t.typname, t.typowner, a.*
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace, aclexplode(t.typacl) a
    WHERE t.typacl IS NOT NULL AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
    UNION ALL
    SELECT 'language', NULL, l.lanname, l.lanowner, a.*
    FROM pg_language l, aclexplode(l.lanacl) a
    WHERE l.lanacl IS NOT NULL
    UNION ALL
    SELECT 'foreignDataWrapper', NULL, w.fdwname, w.fdwowner, a.*
    FROM pg_foreign_data_wrapper w, aclexplode(w.fdwacl) a
    WHERE w.fdwacl IS NOT NULL
    UNION ALL
    SELECT 'foreignServer', NULL, s.srvname, s.srvowner, a.*
    FROM pg_foreign_server s, aclexplode(s.srvacl) a
    WHERE s.srvacl IS NOT NULL
),
per_object AS (
    SELECT e.type, e.schema, e.object,
           CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(e.grantee) END AS role,
           array_agg(DISTINCT e.privilege_type ORDER BY e.privilege_type) AS privileges,
           bool_and(e.is_grantable) AS grantable
    FROM entries e
    WHERE e.grantee <> e.owner
    GROUP BY e.type, e.schema, e.object, e.grantee
),
grouped AS (
    SELECT type, schema, role, privileges, grantable,
           array_agg(object ORDER BY object) AS objects
    FROM per_object
    GROUP BY type, schema, role, privileges, grantable
)
SELECT coalesce(json_agg(json_build_object(
           'name', role || '-' || type || coalesce('-' || schema, '') || '-' || array_to_string(objects, '-'),
           'spec', json_strip_nulls(json_build_object(
               'role', role,
               'objectType', type,
               'schema', schema,
               'objects', CASE WHEN type = 'database' THEN NULL ELSE to_json(objects) END,
               'privileges', to_json(privileges),
               'withGrantOption', grantable
           ))) ORDER BY role, type, schema, objects), '[]'::json)
FROM grouped
