{# One row per wanted grant: for every object in its scope, the privileges
   the grantee holds directly (aclexplode of the object's ACL, or of the
   default ACL when none was ever set). #}
SELECT json_build_array(
{% for item in wanted %}
{% set spec = item.spec %}
{% set type = spec.objectType %}
    (
    WITH grantee AS (
        SELECT {% if spec.role == "PUBLIC" %}0::oid{% else %}(SELECT oid FROM pg_roles WHERE rolname = {{ spec.role }}){% endif %} AS oid
    ),
    objects AS (
{% if type == "database" %}
        SELECT d.datname AS name, d.datdba AS owner, coalesce(d.datacl, acldefault('d', d.datdba)) AS acl
        FROM pg_database d WHERE d.datname = current_database()
{% elif type == "schema" %}
        SELECT n.nspname AS name, n.nspowner AS owner, coalesce(n.nspacl, acldefault('n', n.nspowner)) AS acl
        FROM pg_namespace n
        WHERE {% if spec.objects %}n.nspname IN ({{ spec.objects|literal_list }}){% else %}false{% endif %}
{% elif type in ["table", "sequence"] %}
        SELECT c.relname AS name, c.relowner AS owner,
               coalesce(c.relacl, acldefault({{ "s" if type == "sequence" else "r" }}, c.relowner)) AS acl
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = {{ spec.schema }}
          AND c.relkind IN ({{ ["S"]|literal_list if type == "sequence" else ["r", "p", "v", "m", "f"]|literal_list }})
{% if spec.objects %}
          AND c.relname IN ({{ spec.objects|literal_list }})
{% endif %}
{% else %}
        SELECT NULL::name AS name, NULL::oid AS owner, NULL::aclitem[] AS acl WHERE false
{% endif %}
    ),
    held AS (
        SELECT o.name,
               coalesce((SELECT json_agg(a.privilege_type ORDER BY a.privilege_type)
                         FROM aclexplode(o.acl) a, grantee g WHERE a.grantee = g.oid), '[]'::json) AS privileges,
               coalesce((SELECT bool_and(a.is_grantable)
                         FROM aclexplode(o.acl) a, grantee g WHERE a.grantee = g.oid), false) AS grantable
        {# An owner's privileges are the owner's business: objects the
           grantee owns are outside every grant's scope. #}
        FROM objects o, grantee g
        WHERE o.owner IS DISTINCT FROM g.oid
    )
    SELECT json_build_object(
        'identity', {{ item.identity }},
        'unsupported', {{ type not in ["database", "schema", "table", "sequence"] }},
        'acl', coalesce((SELECT json_object_agg(h.name, h.privileges) FROM held h), '{}'::json),
        'privileges', coalesce((SELECT json_agg(DISTINCT p ORDER BY p) FROM held h, json_array_elements_text(h.privileges) p), '[]'::json),
        {# Nothing in scope: nothing differs, whatever the manifest asks. #}
        'withGrantOption', coalesce((SELECT bool_and(h.grantable) FROM held h), {{ spec.withGrantOption }}),
        'missingObjects', (
{% if type in ["schema", "table", "sequence"] and spec.objects %}
            SELECT coalesce(json_agg(wanted_name ORDER BY wanted_name), '[]'::json)
            FROM unnest(ARRAY[{{ spec.objects|literal_list }}]::text[]) wanted_name
            WHERE wanted_name NOT IN (SELECT name FROM objects)
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
{% else %}
            'DELETE', 'INSERT', {% if server_version_num >= 170000 %}'MAINTAIN', {% endif %}'REFERENCES', 'SELECT', 'TRIGGER', 'TRUNCATE', 'UPDATE'
{% endif %}
        )
    )
    ){% if not loop.last %},{% endif %}

{% endfor %}
)
