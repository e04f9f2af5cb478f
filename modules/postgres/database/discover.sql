{# One row per database except the built-in templates. #}
SELECT coalesce(json_agg(row_to_json(databases) ORDER BY databases.identity), '[]'::json)
FROM (
    SELECT d.datname AS identity,
           pg_get_userbyid(d.datdba) AS owner,
           pg_encoding_to_char(d.encoding) AS encoding,
           d.datcollate AS "lcCollate",
           d.datctype AS "lcCtype",
{% if server_version_num >= 170000 %}
           CASE d.datlocprovider WHEN 'c' THEN 'libc' WHEN 'i' THEN 'icu' WHEN 'b' THEN 'builtin' END AS "localeProvider",
           CASE WHEN d.datlocprovider = 'i' THEN d.datlocale END AS "icuLocale",
           CASE WHEN d.datlocprovider = 'b' THEN d.datlocale END AS "builtinLocale",
{% elif server_version_num >= 150000 %}
           CASE d.datlocprovider WHEN 'c' THEN 'libc' WHEN 'i' THEN 'icu' END AS "localeProvider",
           d.daticulocale AS "icuLocale",
           NULL AS "builtinLocale",
{% else %}
           {# Before PostgreSQL 15 every database uses the C library's locales. #}
           'libc' AS "localeProvider",
           NULL AS "icuLocale",
           NULL AS "builtinLocale",
{% endif %}
           t.spcname AS tablespace,
           d.datconnlimit AS "connectionLimit",
           d.datallowconn AS "allowConnections",
           d.datistemplate AS "isTemplate",
           marked.comment,
           marked.owned,
           marked."ownedBy",
           marked."markerLine"
    FROM pg_database d
    JOIN pg_tablespace t ON t.oid = d.dattablespace
    CROSS JOIN LATERAL (SELECT shobj_description(d.oid, 'pg_database') AS text OFFSET 0) described
    CROSS JOIN LATERAL ({% include "templates/postgres/ownership.sql" %}) marked
    WHERE d.datname NOT IN ('template0', 'template1')
) databases
