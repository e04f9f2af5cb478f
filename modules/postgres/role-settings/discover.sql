{# One row per wanted parameter of a role, database, or role in a database,
   from pg_db_role_setting (setrole 0: every role; setdatabase 0: every
   database). A role or database that does not exist yet has no defaults.
   `exists` is false for a parameter the server knows and that is not set
   there; a parameter the server does not know (and whose name has no dot)
   has no row. Values are as stored: the text after the first `=`. #}
{% if wanted %}
WITH wanted (identity, role, database, parameter) AS (
    VALUES {% for item in wanted %}({{ item.identity }}, {{ item.spec.role|default(none) }}::name, {{ item.spec.database|default(none) }}::name, {{ item.fields.parameter }}::text){% if not loop.last %},
           {% endif %}{% endfor %}

)
SELECT coalesce(json_agg(row_to_json(parameters) ORDER BY parameters.identity), '[]'::json)
FROM (
    SELECT w.identity,
           w.parameter,
           stored.value,
           stored.value IS NOT NULL AS exists,
           s.context,
           s.unit,
           s.vartype,
           w.parameter IN ('search_path', 'temp_tablespaces', 'local_preload_libraries',
                           'session_preload_libraries') AS "isList"
    FROM wanted w
    LEFT JOIN pg_settings s ON s.name = w.parameter
    LEFT JOIN pg_roles r ON r.rolname = w.role
    LEFT JOIN pg_database d ON d.datname = w.database
    LEFT JOIN pg_db_role_setting rs
           ON rs.setrole = CASE WHEN w.role IS NULL THEN 0 ELSE r.oid END
          AND rs.setdatabase = CASE WHEN w.database IS NULL THEN 0 ELSE d.oid END
    LEFT JOIN LATERAL (
        SELECT substr(entry, strpos(entry, '=') + 1) AS value
        FROM unnest(rs.setconfig) entry
        WHERE split_part(entry, '=', 1) = w.parameter
        LIMIT 1
    ) stored ON true
    WHERE s.name IS NOT NULL OR strpos(w.parameter, '.') > 0
) parameters
{% else %}
SELECT '[]'::json
{% endif %}
