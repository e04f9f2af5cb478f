{# Every database but the built-in templates, as a manifest spec. #}
SELECT coalesce(json_agg(json_build_object('name', d.datname, 'spec', json_strip_nulls(json_build_object(
           'name', d.datname,
           'owner', pg_get_userbyid(d.datdba),
           'encoding', pg_encoding_to_char(d.encoding),
           'lcCollate', d.datcollate,
           'lcCtype', d.datctype,
{% if server_version_num >= 150000 %}
           'localeProvider', CASE d.datlocprovider WHEN 'c' THEN 'libc' WHEN 'i' THEN 'icu' WHEN 'b' THEN 'builtin' END,
{% endif %}
{% if server_version_num >= 170000 %}
           'icuLocale', CASE WHEN d.datlocprovider = 'i' THEN d.datlocale END,
           'builtinLocale', CASE WHEN d.datlocprovider = 'b' THEN d.datlocale END,
{% elif server_version_num >= 150000 %}
           'icuLocale', d.daticulocale,
{% endif %}
           'tablespace', t.spcname,
           'connectionLimit', d.datconnlimit,
           'allowConnections', d.datallowconn,
           'isTemplate', d.datistemplate,
           'comment', marked.comment
       ))) ORDER BY d.datname), '[]'::json)
FROM pg_database d
JOIN pg_tablespace t ON t.oid = d.dattablespace
CROSS JOIN LATERAL (SELECT shobj_description(d.oid, 'pg_database') AS text OFFSET 0) described
CROSS JOIN LATERAL ({% include "templates/postgres/ownership.sql" %}) marked
WHERE d.datname NOT IN ('template0', 'template1')
