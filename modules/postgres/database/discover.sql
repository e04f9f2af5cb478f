{# One row per database except the built-in templates. #}
SELECT coalesce(json_agg(row_to_json(databases) ORDER BY databases.identity), '[]'::json)
FROM (
    SELECT d.datname AS identity,
           pg_get_userbyid(d.datdba) AS owner,
           pg_encoding_to_char(d.encoding) AS encoding,
           d.datcollate AS "lcCollate",
           d.datctype AS "lcCtype",
           CASE d.datlocprovider WHEN 'c' THEN 'libc' WHEN 'i' THEN 'icu' WHEN 'b' THEN 'builtin' END AS "localeProvider",
{% if server_version_num >= 170000 %}
           d.datlocale AS "icuLocale",
{% else %}
           d.daticulocale AS "icuLocale",
{% endif %}
           t.spcname AS tablespace,
           d.datconnlimit AS "connectionLimit",
           d.datallowconn AS "allowConnections",
           d.datistemplate AS "isTemplate",
           marked.comment,
           marked.owned
    FROM pg_database d
    JOIN pg_tablespace t ON t.oid = d.dattablespace
    CROSS JOIN LATERAL (SELECT shobj_description(d.oid, 'pg_database') AS text) described
    CROSS JOIN LATERAL ({% include "templates/postgres/ownership.sql" %}) marked
    WHERE d.datname NOT IN ('template0', 'template1')
) databases
