{# Privileges that roles named by this database's grants hold on objects no
   grant covers: listed in the plan, never touched. Objects with an explicit
   ACL only; owners' own privileges are left out. Routines are listed by
   signature and covered by a grant naming them or their signature. #}
WITH wanted (role, type, schema, objects) AS (
    VALUES {% for item in wanted %}({{ item.spec.role }}, {{ item.spec.objectType }}, {{ item.spec.schema | default(none) }}::name,
            ARRAY[{% for object in item.spec.objects %}{{ object }}{% if not loop.last %}, {% endif %}{% endfor %}]::text[]){% if not loop.last %},
           {% endif %}{% endfor %}

),
held AS (
{% if database %}
    SELECT 'database' AS type, NULL::name AS schema, d.datname::text AS object, NULL::name AS base, NULL::oid AS routine,
           d.datdba AS owner, a.grantee, a.privilege_type
    FROM pg_database d, aclexplode(d.datacl) a
    WHERE d.datname = current_database() AND d.datacl IS NOT NULL
    UNION ALL
    SELECT 'schema', NULL, n.nspname, NULL, NULL, n.nspowner, a.grantee, a.privilege_type
    FROM pg_namespace n, aclexplode(n.nspacl) a
    WHERE n.nspacl IS NOT NULL AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
    UNION ALL
    SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END, n.nspname, c.relname, NULL, NULL, c.relowner, a.grantee, a.privilege_type
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
    WHERE c.relacl IS NOT NULL AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
    UNION ALL
    SELECT CASE WHEN p.prokind = 'p' THEN 'procedure' ELSE 'function' END, n.nspname,
           p.proname || '(' || oidvectortypes(p.proargtypes) || ')', p.proname, p.oid, p.proowner, a.grantee, a.privilege_type
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, aclexplode(p.proacl) a
    WHERE p.proacl IS NOT NULL AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
    UNION ALL
    SELECT 'type', n.nspname, t.typname, NULL, NULL, t.typowner, a.grantee, a.privilege_type
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace, aclexplode(t.typacl) a
    WHERE t.typacl IS NOT NULL AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
    UNION ALL
    SELECT 'language', NULL, l.lanname, NULL, NULL, l.lanowner, a.grantee, a.privilege_type
    FROM pg_language l, aclexplode(l.lanacl) a
    WHERE l.lanacl IS NOT NULL
    UNION ALL
    SELECT 'foreignDataWrapper', NULL, w.fdwname, NULL, NULL, w.fdwowner, a.grantee, a.privilege_type
    FROM pg_foreign_data_wrapper w, aclexplode(w.fdwacl) a
    WHERE w.fdwacl IS NOT NULL
    UNION ALL
    SELECT 'foreignServer', NULL, s.srvname, NULL, NULL, s.srvowner, a.grantee, a.privilege_type
    FROM pg_foreign_server s, aclexplode(s.srvacl) a
    WHERE s.srvacl IS NOT NULL
{% else %}
    {# The maintenance session: grants without a database are on
       cluster-wide objects. #}
    SELECT 'tablespace' AS type, NULL::name AS schema, t.spcname::text AS object, NULL::name AS base, NULL::oid AS routine,
           t.spcowner AS owner, a.grantee, a.privilege_type
    FROM pg_tablespace t, aclexplode(t.spcacl) a
    WHERE t.spcacl IS NOT NULL
{% if server_version_num >= 150000 %}
    UNION ALL
    SELECT 'parameter', NULL, p.parname, NULL, NULL, 10::oid, a.grantee, a.privilege_type
    FROM pg_parameter_acl p, aclexplode(p.paracl) a
    WHERE p.paracl IS NOT NULL
{% endif %}
{% endif %}
),
named AS (
    SELECT h.*, CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(h.grantee) END AS role
    FROM held h
    WHERE h.grantee <> h.owner
)
SELECT coalesce(json_agg(json_build_object(
           'identity', n.role || ': ' || n.privileges || ' on ' || n.type || ' ' || coalesce(n.schema || '.', '') || n.object
       ) ORDER BY n.role, n.type, n.schema, n.object), '[]'::json)
FROM (
    SELECT role, type, schema, object, string_agg(privilege_type, ', ' ORDER BY privilege_type) AS privileges
    FROM named
    WHERE role IN (SELECT role FROM wanted)
      AND NOT EXISTS (
          SELECT 1 FROM wanted w
          WHERE w.role = named.role
            AND (w.type = named.type OR (w.type = 'routine' AND named.type IN ('function', 'procedure')))
            AND (w.type = 'database'
                 OR (w.schema IS NULL AND named.object = ANY (w.objects))
                 OR (w.schema = named.schema
                     AND (cardinality(w.objects) = 0
                          OR named.object = ANY (w.objects)
                          OR named.base = ANY (w.objects)
                          OR EXISTS (SELECT 1 FROM unnest(w.objects) o
                                     WHERE named.routine IS NOT NULL AND strpos(o, '(') > 0
                                       AND to_regprocedure(quote_ident(w.schema) || '.' || o) = named.routine)))))
    GROUP BY role, type, schema, object
) n
