{# Privileges that roles named by this database's grants hold on objects no
   grant covers: listed in the plan, never touched. Databases, schemas,
   tables and sequences with an explicit ACL only; owners' own privileges
   are left out. #}
WITH wanted (role, type, schema, objects) AS (
    VALUES {% for item in wanted %}({{ item.spec.role }}, {{ item.spec.objectType }}, {{ item.spec.schema | default(none) }}::name,
            ARRAY[{% for object in item.spec.objects %}{{ object }}{% if not loop.last %}, {% endif %}{% endfor %}]::text[]){% if not loop.last %},
           {% endif %}{% endfor %}

),
held AS (
    SELECT 'database' AS type, NULL::name AS schema, d.datname AS object, d.datdba AS owner, a.grantee, a.privilege_type
    FROM pg_database d, aclexplode(d.datacl) a
    WHERE d.datname = current_database() AND d.datacl IS NOT NULL
    UNION ALL
    SELECT 'schema', NULL, n.nspname, n.nspowner, a.grantee, a.privilege_type
    FROM pg_namespace n, aclexplode(n.nspacl) a
    WHERE n.nspacl IS NOT NULL AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
    UNION ALL
    SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END, n.nspname, c.relname, c.relowner, a.grantee, a.privilege_type
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
    WHERE c.relacl IS NOT NULL AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
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
          WHERE w.role = named.role AND w.type = named.type
            AND (w.type = 'database'
                 OR (w.type = 'schema' AND named.object = ANY (w.objects))
                 OR (w.schema = named.schema AND (cardinality(w.objects) = 0 OR named.object = ANY (w.objects)))))
    GROUP BY role, type, schema, object
) n
