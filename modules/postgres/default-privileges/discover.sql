{# One row per wanted default-privilege set: what the grantee holds in the
   owner's default ACL for the type (and schema). No row in pg_default_acl
   means the built-in defaults, in which a grantee other than the owner and
   PUBLIC holds nothing. #}
SELECT json_build_array(
{% for item in wanted %}
{% set spec = item.spec %}
{% set type_code = {"table": "r", "sequence": "S", "function": "f", "type": "T", "schema": "n"}[spec.objectType] %}
    (
    WITH grantee AS (
        SELECT {% if spec.role == "PUBLIC" %}0::oid{% else %}(SELECT oid FROM pg_roles WHERE rolname = {{ spec.role }}){% endif %} AS oid
    ),
    entry AS (
        SELECT d.defaclacl AS acl
        FROM pg_default_acl d
        WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = {{ spec.owner }})
          AND d.defaclobjtype = {{ type_code }}
          AND d.defaclnamespace = {% if spec.schema is defined %}(SELECT oid FROM pg_namespace WHERE nspname = {{ spec.schema }}){% else %}0{% endif %}

    ),
    {# Database-wide defaults start from the built-in ones (PUBLIC may
       EXECUTE functions and use types); per-schema entries add to them. #}
    effective AS (
{% if spec.schema is defined %}
        SELECT e.acl FROM entry e
{% else %}
        SELECT coalesce((SELECT e.acl FROM entry e),
                        acldefault({{ {"table": "r", "sequence": "s", "function": "f", "type": "T", "schema": "n"}[spec.objectType] }},
                                   (SELECT oid FROM pg_roles WHERE rolname = {{ spec.owner }}))) AS acl
{% endif %}
    ),
    held AS (
        SELECT coalesce((SELECT json_agg(DISTINCT a.privilege_type)
                         FROM effective e, aclexplode(e.acl) a, grantee g WHERE a.grantee = g.oid), '[]'::json) AS privileges,
               coalesce((SELECT bool_and(a.is_grantable)
                         FROM effective e, aclexplode(e.acl) a, grantee g WHERE a.grantee = g.oid), false) AS grantable
    )
    SELECT json_build_object(
        'identity', {{ item.identity }},
        {# One pseudo-object, so that the privileges comparison is the grants' one. #}
        'acl', json_build_object('future objects', (SELECT privileges FROM held)),
        'privileges', (SELECT privileges FROM held),
        'withGrantOption', (SELECT grantable FROM held),
        {# What the grantee would hold had nothing been altered: a prune
           returns to it (the built-in defaults database-wide; nothing
           added per schema). #}
        'defaults', {% if spec.schema is defined %}'[]'::json{% else %}coalesce((
            SELECT json_agg(DISTINCT a.privilege_type)
            FROM aclexplode(acldefault({{ {"table": "r", "sequence": "s", "function": "f", "type": "T", "schema": "n"}[spec.objectType] }},
                                       (SELECT oid FROM pg_roles WHERE rolname = {{ spec.owner }}))) a, grantee g
            WHERE a.grantee = g.oid), '[]'::json){% endif %},
        'allPrivileges', json_build_array(
{% if spec.objectType == "table" %}
            'DELETE', 'INSERT', {% if server_version_num >= 170000 %}'MAINTAIN', {% endif %}'REFERENCES', 'SELECT', 'TRIGGER', 'TRUNCATE', 'UPDATE'
{% elif spec.objectType == "sequence" %}
            'SELECT', 'UPDATE', 'USAGE'
{% elif spec.objectType == "function" %}
            'EXECUTE'
{% elif spec.objectType == "type" %}
            'USAGE'
{% else %}
            'CREATE', 'USAGE'
{% endif %}
        )
    )
    ){% if not loop.last %},{% endif %}

{% endfor %}
)
