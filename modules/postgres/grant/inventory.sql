{# Privileges that roles named by this database's grants hold on objects no
   grant covers: listed in the plan, never touched. Owners' own privileges
   and what an object was created with (PostgreSQL's defaults, or the
   initial privileges of what initdb and extensions made) are left out.
   Routines are listed by signature and covered by a grant naming them or
   their signature.

   `probe` (inventory-probe.sql) says in which catalogs of this database the
   grantees can hold privileges at all; null: in any. Only those are read,
   and with none there is nothing to ask. #}
{% set place = database or "" %}
{% set catalogs = none if probe is none else (probe[place] if place in probe else []) %}
{% if catalogs is none or catalogs %}
WITH wanted (role, type, schema, objects) AS (
    VALUES {% for item in wanted %}({{ item.spec.role }}, {{ item.spec.objectType }}, {{ item.spec.schema | default(none) }}::name,
            ARRAY[{% for object in item.spec.objects %}{{ object }}{% if not loop.last %}, {% endif %}{% endfor %}]::text[]){% if not loop.last %},
           {% endif %}{% endfor %}

),
{% set user_schema %}n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'{% endset %}
{# Each object with an ACL: its type, schema, name, routine name and oid,
   owner, ACL and the ACL it was created with. #}
objects AS (
    {# The columns' types, and no row. #}
    SELECT NULL::text AS type, NULL::name AS schema, NULL::text AS object, NULL::name AS base, NULL::oid AS routine,
           NULL::oid AS owner, NULL::aclitem[] AS acl, NULL::aclitem[] AS builtin
    WHERE false
{% if database %}
{% if catalogs is none or "pg_database" in catalogs %}
    UNION ALL
    SELECT 'database', NULL, d.datname::text, NULL, NULL, d.datdba, d.datacl, acldefault('d', d.datdba)
    FROM pg_database d
    WHERE d.datname = current_database() AND d.datacl IS NOT NULL
{% endif %}
{% if catalogs is none or "pg_namespace" in catalogs %}
    UNION ALL
    SELECT 'schema', NULL, n.nspname, NULL, NULL, n.nspowner, n.nspacl,
           coalesce(i.initprivs, acldefault('n', n.nspowner))
    FROM pg_namespace n
    LEFT JOIN pg_init_privs i ON i.objoid = n.oid AND i.classoid = 'pg_namespace'::regclass AND i.objsubid = 0
    WHERE n.nspacl IS NOT NULL AND {{ user_schema }}
{% endif %}
{% if catalogs is none or "pg_class" in catalogs %}
    UNION ALL
    SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END, n.nspname, c.relname, NULL, NULL, c.relowner, c.relacl,
           coalesce(i.initprivs, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_init_privs i ON i.objoid = c.oid AND i.classoid = 'pg_class'::regclass AND i.objsubid = 0
    WHERE c.relacl IS NOT NULL AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND {{ user_schema }}
{% endif %}
{% if catalogs is none or "pg_proc" in catalogs %}
    UNION ALL
    SELECT CASE WHEN p.prokind = 'p' THEN 'procedure' ELSE 'function' END, n.nspname,
           p.proname || '(' || oidvectortypes(p.proargtypes) || ')', p.proname, p.oid, p.proowner, p.proacl,
           coalesce(i.initprivs, acldefault('f', p.proowner))
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    LEFT JOIN pg_init_privs i ON i.objoid = p.oid AND i.classoid = 'pg_proc'::regclass AND i.objsubid = 0
    WHERE p.proacl IS NOT NULL AND {{ user_schema }}
{% endif %}
{% if catalogs is none or "pg_type" in catalogs %}
    UNION ALL
    SELECT 'type', n.nspname, t.typname, NULL, NULL, t.typowner, t.typacl,
           coalesce(i.initprivs, acldefault('T', t.typowner))
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    LEFT JOIN pg_init_privs i ON i.objoid = t.oid AND i.classoid = 'pg_type'::regclass AND i.objsubid = 0
    WHERE t.typacl IS NOT NULL AND {{ user_schema }}
{% endif %}
{% if catalogs is none or "pg_language" in catalogs %}
    UNION ALL
    SELECT 'language', NULL, l.lanname, NULL, NULL, l.lanowner, l.lanacl,
           coalesce(i.initprivs, acldefault('l', l.lanowner))
    FROM pg_language l
    LEFT JOIN pg_init_privs i ON i.objoid = l.oid AND i.classoid = 'pg_language'::regclass AND i.objsubid = 0
    WHERE l.lanacl IS NOT NULL
{% endif %}
{% if catalogs is none or "pg_foreign_data_wrapper" in catalogs %}
    UNION ALL
    SELECT 'foreignDataWrapper', NULL, w.fdwname, NULL, NULL, w.fdwowner, w.fdwacl, acldefault('F', w.fdwowner)
    FROM pg_foreign_data_wrapper w
    WHERE w.fdwacl IS NOT NULL
{% endif %}
{% if catalogs is none or "pg_foreign_server" in catalogs %}
    UNION ALL
    SELECT 'foreignServer', NULL, s.srvname, NULL, NULL, s.srvowner, s.srvacl, acldefault('S', s.srvowner)
    FROM pg_foreign_server s
    WHERE s.srvacl IS NOT NULL
{% endif %}
{% else %}
    {# The maintenance session: grants without a database are on
       cluster-wide objects. #}
{% if catalogs is none or "pg_tablespace" in catalogs %}
    UNION ALL
    SELECT 'tablespace', NULL, t.spcname::text, NULL, NULL, t.spcowner, t.spcacl, acldefault('t', t.spcowner)
    FROM pg_tablespace t
    WHERE t.spcacl IS NOT NULL
{% endif %}
{% if server_version_num >= 150000 and (catalogs is none or "pg_parameter_acl" in catalogs) %}
    UNION ALL
    SELECT 'parameter', NULL, p.parname, NULL, NULL, 10::oid, p.paracl, acldefault('p', 10)
    FROM pg_parameter_acl p
    WHERE p.paracl IS NOT NULL
{% endif %}
{% endif %}
),
held AS (
    SELECT o.type, o.schema, o.object, o.base, o.routine, o.owner, a.grantee, a.privilege_type
    FROM objects o, aclexplode(o.acl) a
    WHERE NOT EXISTS (SELECT 1 FROM aclexplode(o.builtin) b
                      WHERE b.grantee = a.grantee AND b.privilege_type = a.privilege_type)
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
{% endif %}
