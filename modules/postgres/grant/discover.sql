{# One row per wanted grant: for every object in its scope, the privileges
   the grantee holds directly (aclexplode of the object's ACL, or of the
   default ACL when none was ever set).

   Routines are named in the manifest as `name` (every overload) or
   `name(argument types)` (one signature, resolved by the server with
   to_regprocedure). Their statements name them by the argument types'
   catalog names (`"pg_catalog"."int4"`), which discovery returns in
   `signatures`: nothing the server prints as SQL text is ever spliced into
   a statement. #}
{% set routine_kinds = {"function": ["f", "a", "w"], "procedure": ["p"], "routine": ["f", "a", "w", "p"]} %}
{% set default_acl = {"database": "d", "schema": "n", "table": "r", "sequence": "s", "function": "f", "procedure": "f",
                      "routine": "f", "type": "T", "language": "l", "foreignDataWrapper": "F", "foreignServer": "S",
                      "largeObject": "L", "parameter": "p", "tablespace": "t"} %}
SELECT json_build_array(
{% for item in wanted %}
{% set spec = item.spec %}
{% set type = spec.objectType %}
{% set listed = spec.objects | default([]) %}
    (
    WITH grantee AS (
        SELECT {% if spec.role == "PUBLIC" %}0::oid{% else %}(SELECT oid FROM pg_roles WHERE rolname = {{ spec.role }}){% endif %} AS oid
    ),
{% if type in routine_kinds %}
    {# Each listed routine with the overloads it names. #}
    listed_routines AS (
        SELECT l.entry, to_regprocedure(quote_ident({{ spec.schema }}) || '.' || l.entry)::oid AS oid
        FROM unnest(ARRAY[{{ listed|literal_list }}]::text[]) l(entry)
        WHERE strpos(l.entry, '(') > 0
        UNION ALL
        SELECT l.entry, p.oid
        FROM unnest(ARRAY[{{ listed|literal_list }}]::text[]) l(entry)
        JOIN pg_proc p ON p.proname = l.entry
        JOIN pg_namespace n ON n.oid = p.pronamespace AND n.nspname = {{ spec.schema }}
        WHERE strpos(l.entry, '(') = 0
    ),
{% endif %}
    objects (name, owner, acl, signature) AS (
{% if type == "database" %}
        SELECT d.datname::text, d.datdba, d.datacl, NULL::json
        FROM pg_database d WHERE d.datname = current_database()
{% elif type == "schema" %}
        SELECT n.nspname::text, n.nspowner, n.nspacl, NULL::json
        FROM pg_namespace n
        WHERE n.nspname = ANY (ARRAY[{{ listed|literal_list }}]::text[])
{% elif type in ["table", "sequence"] %}
        SELECT c.relname::text, c.relowner, c.relacl, NULL::json
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = {{ spec.schema }}
          AND c.relkind IN ({{ ["S"]|literal_list if type == "sequence" else ["r", "p", "v", "m", "f"]|literal_list }})
{% if listed %}
          AND c.relname = ANY (ARRAY[{{ listed|literal_list }}]::text[])
{% endif %}
{% elif type in routine_kinds %}
        SELECT p.proname || '(' || oidvectortypes(p.proargtypes) || ')', p.proowner, p.proacl,
               json_build_object(
                   'name', p.proname,
                   'oid', p.oid,
                   'kind', p.prokind,
                   'arguments', (SELECT coalesce(json_agg(json_build_array(tn.nspname, t.typname) ORDER BY a.position), '[]'::json)
                                 FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY a(type_oid, position)
                                 JOIN pg_type t ON t.oid = a.type_oid
                                 JOIN pg_namespace tn ON tn.oid = t.typnamespace))
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = {{ spec.schema }}
          AND p.prokind IN ({{ routine_kinds[type]|literal_list }})
{% if listed %}
          AND p.oid IN (SELECT oid FROM listed_routines)
{% endif %}
{% elif type == "type" %}
        SELECT t.typname::text, t.typowner, t.typacl, NULL::json
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = {{ spec.schema }} AND t.typname = ANY (ARRAY[{{ listed|literal_list }}]::text[])
{% elif type == "language" %}
        SELECT l.lanname::text, l.lanowner, l.lanacl, NULL::json
        FROM pg_language l WHERE l.lanname = ANY (ARRAY[{{ listed|literal_list }}]::text[])
{% elif type == "foreignDataWrapper" %}
        SELECT w.fdwname::text, w.fdwowner, w.fdwacl, NULL::json
        FROM pg_foreign_data_wrapper w WHERE w.fdwname = ANY (ARRAY[{{ listed|literal_list }}]::text[])
{% elif type == "foreignServer" %}
        SELECT s.srvname::text, s.srvowner, s.srvacl, NULL::json
        FROM pg_foreign_server s WHERE s.srvname = ANY (ARRAY[{{ listed|literal_list }}]::text[])
{% elif type == "largeObject" %}
        SELECT l.oid::text, l.lomowner, l.lomacl, NULL::json
        FROM pg_largeobject_metadata l WHERE l.oid::text = ANY (ARRAY[{{ listed|literal_list }}]::text[])
{% elif type == "parameter" and server_version_num >= 150000 %}
        {# A parameter has an ACL row only once something was granted on it;
           its owner is the bootstrap superuser. Custom (dotted) names are
           valid once their module is loaded; others must be known. #}
        SELECT s.name, 10::oid, (SELECT a.paracl FROM pg_parameter_acl a WHERE a.parname = s.name), NULL::json
        FROM unnest(ARRAY[{{ listed|literal_list }}]::text[]) s(name)
        WHERE strpos(s.name, '.') > 0 OR s.name IN (SELECT lower(name) FROM pg_settings)
{% elif type == "tablespace" %}
        SELECT t.spcname::text, t.spcowner, t.spcacl, NULL::json
        FROM pg_tablespace t WHERE t.spcname = ANY (ARRAY[{{ listed|literal_list }}]::text[])
{% else %}
        SELECT NULL::text, NULL::oid, NULL::aclitem[], NULL::json WHERE false
{% endif %}
    ),
    held AS (
        SELECT o.name, o.signature,
               coalesce((SELECT json_agg(a.privilege_type ORDER BY a.privilege_type)
                         FROM aclexplode(coalesce(o.acl, acldefault({{ default_acl[type] }}, o.owner))) a, grantee g
                         WHERE a.grantee = g.oid
{% if "ALL" not in spec.privileges %}
                           {# A privilege on the object that another grant of the
                              manifests to the same grantee declares, and this one
                              does not, is that grant's: neither shown here nor
                              revoked by this one (grants are merged per privilege). #}
                           AND NOT (a.privilege_type <> ALL (ARRAY[{{ spec.privileges|literal_list }}]::text[]) AND (false
{% for other in wanted if not other.orphan and other.identity != item.identity
                           and other.spec.role == spec.role and other.spec.objectType == type
                           and other.spec.schema | default(none) == spec.schema | default(none) %}
                               OR ({% if other.spec.objects | default([]) %}o.name = ANY (ARRAY[{{ other.spec.objects|literal_list }}]::text[]){% else %}true{% endif %}
                                   {% if "ALL" not in other.spec.privileges %} AND a.privilege_type = ANY (ARRAY[{{ other.spec.privileges|literal_list }}]::text[]){% endif %})
{% endfor %}
                           ))
{% endif %}
                         ), '[]'::json) AS privileges,
               {# What the grantee holds when nothing was ever granted: a prune returns to it. #}
               coalesce((SELECT json_agg(a.privilege_type ORDER BY a.privilege_type)
                         FROM aclexplode(acldefault({{ default_acl[type] }}, o.owner)) a, grantee g
                         WHERE a.grantee = g.oid), '[]'::json) AS defaults,
               coalesce((SELECT bool_and(a.is_grantable)
                         FROM aclexplode(coalesce(o.acl, acldefault({{ default_acl[type] }}, o.owner))) a, grantee g
                         WHERE a.grantee = g.oid), false) AS grantable
        {# An owner's privileges are the owner's business: objects the
           grantee owns are outside every grant's scope. #}
        FROM objects o, grantee g
        WHERE o.owner IS DISTINCT FROM g.oid
    )
    SELECT json_build_object(
        'identity', {{ item.identity }},
        'unsupported', {{ type == "parameter" and server_version_num < 150000 }},
        'acl', coalesce((SELECT json_object_agg(h.name, h.privileges) FROM held h), '{}'::json),
        'defaults', coalesce((SELECT json_object_agg(h.name, h.defaults) FROM held h), '{}'::json),
{% if item.orphan %}
        {# Objects a grant of the manifests to the same grantee covers: a
           prune of this one leaves them to it. Routines are matched by oid. #}
        'covered', coalesce((SELECT json_agg(h.name) FROM held h WHERE false
{% for other in wanted if not other.orphan and other.spec.role == spec.role
                           and other.spec.schema | default(none) == spec.schema | default(none)
                           and (other.spec.objectType == type
                                or (other.spec.objectType in routine_kinds and type in routine_kinds)) %}
{% set other_objects = other.spec.objects | default([]) %}
            OR ({% if other.spec.objectType == "function" %}(h.signature ->> 'kind') <> 'p' AND {% elif other.spec.objectType == "procedure" %}(h.signature ->> 'kind') = 'p' AND {% endif %}
{% if not other_objects %}
                true
{% else %}
                (h.name = ANY (ARRAY[{{ other_objects|literal_list }}]::text[])
{% if type in routine_kinds %}
                 OR (h.signature ->> 'name') = ANY (ARRAY[{{ other_objects|literal_list }}]::text[])
                 OR (h.signature ->> 'oid')::oid IN (
                        SELECT to_regprocedure(quote_ident({{ spec.schema }}) || '.' || o)::oid
                        FROM unnest(ARRAY[{{ other_objects|literal_list }}]::text[]) o
                        WHERE strpos(o, '(') > 0)
{% endif %}
                )
{% endif %}
            )
{% endfor %}
        ), '[]'::json),
{% endif %}
        'signatures', coalesce((SELECT json_object_agg(h.name, h.signature) FROM held h WHERE h.signature IS NOT NULL), '{}'::json),
        {# The set every object holds; per object when they differ. #}
        'privileges', CASE WHEN (SELECT count(DISTINCT h.privileges::text) FROM held h) > 1
                           THEN (SELECT json_object_agg(h.name, h.privileges ORDER BY h.name) FROM held h)
                           ELSE coalesce((SELECT h.privileges FROM held h LIMIT 1), '[]'::json)
                      END,
        {# Nothing in scope: nothing differs, whatever the manifest asks. #}
        'withGrantOption', coalesce((SELECT bool_and(h.grantable) FROM held h), {{ spec.withGrantOption }}),
        {# Listed objects the server does not have (a routine signature that
           resolves to nothing, a routine name without any overload). #}
        'missingObjects', (
{% if listed and type != "database" %}
            SELECT coalesce(json_agg(wanted_name ORDER BY wanted_name), '[]'::json)
            FROM unnest(ARRAY[{{ listed|literal_list }}]::text[]) wanted_name
{% if type in routine_kinds %}
            WHERE NOT EXISTS (
                SELECT 1 FROM listed_routines r JOIN pg_proc p ON p.oid = r.oid
                WHERE r.entry = wanted_name AND p.prokind IN ({{ routine_kinds[type]|literal_list }}))
{% else %}
            WHERE wanted_name NOT IN (SELECT name FROM objects WHERE name IS NOT NULL)
{% endif %}
{% else %}
            SELECT '[]'::json
{% endif %}
        ),
        'allPrivileges', json_build_array(
{% if type == "database" %}
            'CREATE', 'CONNECT', 'TEMPORARY'
{% elif type == "schema" %}
            'CREATE', 'USAGE'
{% elif type == "sequence" %}
            'SELECT', 'UPDATE', 'USAGE'
{% elif type == "table" %}
            'DELETE', 'INSERT', {% if server_version_num >= 170000 %}'MAINTAIN', {% endif %}'REFERENCES', 'SELECT', 'TRIGGER', 'TRUNCATE', 'UPDATE'
{% elif type in routine_kinds %}
            'EXECUTE'
{% elif type == "largeObject" %}
            'SELECT', 'UPDATE'
{% elif type == "parameter" %}
            'ALTER SYSTEM', 'SET'
{% elif type == "tablespace" %}
            'CREATE'
{% else %}
            'USAGE'
{% endif %}
        )
    )
    ){% if not loop.last %},{% endif %}

{% endfor %}
)
