{# Every publication of the database. Tables are written as the manifest
   writes them: `schema.table`, or an object when a name holds a dot, when
   only some columns are published, or when the manifest writes that table
   as an object; a column list in the manifest's order when it names the
   same columns. #}
{# A row filter as the manifest writes it stands for the server's when
   both read the same once case (outside quotes), parentheses, spaces and
   casts are set aside: the server prints `region = 'eu'` as
   `(region = 'eu'::text)`. `x` is the filter's text. #}
{% set filter_key %}
(SELECT string_agg(CASE WHEN part[1] IS NOT NULL THEN part[1]
                        ELSE regexp_replace(regexp_replace(lower(part[2]),
                                 '::(character varying|timestamp with(out)? time zone|time with(out)? time zone|double precision|bit varying|[a-z_][a-z0-9_]*)(\[\])?', '', 'g'),
                             '[()[:space:]]', '', 'g') END, '' ORDER BY n)
 FROM regexp_matches(x, '(''(?:[^'']|'''')*''|"(?:[^"]|"")*")|([^''"]+)', 'g') WITH ORDINALITY AS parts(part, n))
{% endset %}
{# The tables as the manifests write them: from the items' fields, where a
   row filter is still text. #}
{% set ns = namespace(tables=[]) %}
{% for item in wanted %}{% for table in item.fields.tables|default([]) if table is mapping %}{% set ns.tables = ns.tables + [(item.identity, table.schema, table.table, table.columns|default(none), table.where|default(none))] %}{% endfor %}{% endfor %}
WITH written (publication, schema, "table", columns, row_filter) AS (
    VALUES {% for publication, schema, table, columns, row_filter in ns.tables %}({{ publication }}::name, {{ schema }}::name, {{ table }}::name, {% if columns is none %}NULL{% else %}ARRAY[{% for column in columns %}{{ column }}{% if not loop.last %}, {% endif %}{% endfor %}]{% endif %}::name[], {{ row_filter }}::text){% if not loop.last %},
           {% endif %}{% else %}(NULL::name, NULL::name, NULL::name, NULL::name[], NULL::text){% endfor %}

)
SELECT coalesce(json_agg(row_to_json(publications) ORDER BY publications.identity), '[]'::json)
FROM (
    SELECT p.pubname AS identity,
           p.puballtables AS "allTables",
           {# The tables named in the publication (not the partitions that
              pg_publication_tables would list for a partitioned one). #}
           coalesce((SELECT json_agg(CASE WHEN strpos(n.nspname, '.') > 0 OR strpos(c.relname, '.') > 0
                                               OR listed.columns IS NOT NULL OR listed.row_filter IS NOT NULL
                                               OR w.publication IS NOT NULL
                                          THEN json_strip_nulls(json_build_object('schema', n.nspname, 'table', c.relname,
                                                   'columns', CASE WHEN w.columns IS NOT NULL
                                                                    AND (SELECT array_agg(x ORDER BY x) FROM unnest(w.columns) x)
                                                                      = (SELECT array_agg(x ORDER BY x) FROM unnest(listed.columns) x)
                                                                   THEN w.columns ELSE listed.columns END,
                                                   'where', CASE WHEN w.row_filter IS NOT NULL AND listed.row_filter IS NOT NULL
                                                                  AND (SELECT {{ filter_key }} FROM (SELECT w.row_filter AS x) written_filter)
                                                                    = (SELECT {{ filter_key }} FROM (SELECT listed.row_filter AS x) live_filter)
                                                                 THEN w.row_filter ELSE listed.row_filter END))
                                          ELSE to_json(n.nspname || '.' || c.relname) END
                                     ORDER BY n.nspname, c.relname)
                     FROM pg_publication_rel r
                     JOIN pg_class c ON c.oid = r.prrelid
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                     CROSS JOIN LATERAL (
{% include "modules/postgres/publication/listed.sql" %}
                     ) listed
                     LEFT JOIN written w ON w.publication = p.pubname AND w.schema = n.nspname AND w."table" = c.relname
                     WHERE r.prpubid = p.oid), '[]'::json) AS tables,
{% if server_version_num >= 150000 %}
           (SELECT json_agg(n.nspname ORDER BY n.nspname)
            FROM pg_publication_namespace pn JOIN pg_namespace n ON n.oid = pn.pnnspid
            WHERE pn.pnpubid = p.oid) AS schemas,
{% endif %}
           (SELECT json_agg(operation ORDER BY operation) FROM (
                SELECT 'insert' AS operation WHERE p.pubinsert
                UNION ALL SELECT 'update' WHERE p.pubupdate
                UNION ALL SELECT 'delete' WHERE p.pubdelete
                UNION ALL SELECT 'truncate' WHERE p.pubtruncate) operations) AS operations,
           p.pubviaroot AS "publishViaPartitionRoot",
           pg_get_userbyid(p.pubowner) AS owner,
           marked.comment,
           marked.owned,
           marked."ownedBy",
           marked."markerLine"
    FROM pg_publication p
    CROSS JOIN LATERAL (SELECT obj_description(p.oid, 'pg_publication') AS text OFFSET 0) described
    CROSS JOIN LATERAL ({% include "templates/postgres/ownership.sql" %}) marked
) publications
