{# Every publication of the database, as a manifest spec. #}
SELECT coalesce(json_agg(json_build_object('name', p.pubname, 'spec', json_strip_nulls(json_build_object(
           'name', p.pubname,
           'allTables', CASE WHEN p.puballtables THEN true END,
           'tables', CASE WHEN NOT p.puballtables THEN (
               SELECT coalesce(json_agg(CASE WHEN strpos(n.nspname, '.') > 0 OR strpos(c.relname, '.') > 0
                                                  OR listed.columns IS NOT NULL OR listed.row_filter IS NOT NULL
                                             THEN json_strip_nulls(json_build_object('schema', n.nspname, 'table', c.relname,
                                                                                     'columns', listed.columns,
                                                                                     'where', listed.row_filter))
                                             ELSE to_json(n.nspname || '.' || c.relname) END
                                        ORDER BY n.nspname, c.relname), '[]'::json)
               FROM pg_publication_rel r
               JOIN pg_class c ON c.oid = r.prrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               CROSS JOIN LATERAL (
{% include "modules/postgres/publication/listed.sql" %}
               ) listed
               WHERE r.prpubid = p.oid) END,
{% if server_version_num >= 150000 %}
           'schemas', (SELECT json_agg(n.nspname ORDER BY n.nspname)
                       FROM pg_publication_namespace pn JOIN pg_namespace n ON n.oid = pn.pnnspid
                       WHERE pn.pnpubid = p.oid),
{% endif %}
           'operations', (SELECT json_agg(operation ORDER BY operation) FROM (
                SELECT 'insert' AS operation WHERE p.pubinsert
                UNION ALL SELECT 'update' WHERE p.pubupdate
                UNION ALL SELECT 'delete' WHERE p.pubdelete
                UNION ALL SELECT 'truncate' WHERE p.pubtruncate) operations),
           'publishViaPartitionRoot', CASE WHEN p.pubviaroot THEN true END,
           'owner', pg_get_userbyid(p.pubowner),
           'comment', marked.comment
       ))) ORDER BY p.pubname), '[]'::json)
FROM pg_publication p
CROSS JOIN LATERAL (SELECT obj_description(p.oid, 'pg_publication') AS text OFFSET 0) described
CROSS JOIN LATERAL ({% include "templates/postgres/ownership.sql" %}) marked
