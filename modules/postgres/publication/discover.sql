{# Every publication of the database. #}
SELECT coalesce(json_agg(row_to_json(publications) ORDER BY publications.identity), '[]'::json)
FROM (
    SELECT p.pubname AS identity,
           p.puballtables AS "allTables",
           {# The tables named in the publication (not the partitions that
              pg_publication_tables would list for a partitioned one). #}
           {# As the manifest writes them: schema.table, or an object when a
              name holds a dot. #}
           coalesce((SELECT json_agg(CASE WHEN strpos(n.nspname, '.') > 0 OR strpos(c.relname, '.') > 0
                                          THEN json_build_object('schema', n.nspname, 'table', c.relname)
                                          ELSE to_json(n.nspname || '.' || c.relname) END
                                     ORDER BY n.nspname, c.relname)
                     FROM pg_publication_rel r
                     JOIN pg_class c ON c.oid = r.prrelid
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE r.prpubid = p.oid), '[]'::json) AS tables,
           (SELECT json_agg(operation ORDER BY operation) FROM (
                SELECT 'insert' AS operation WHERE p.pubinsert
                UNION ALL SELECT 'update' WHERE p.pubupdate
                UNION ALL SELECT 'delete' WHERE p.pubdelete
                UNION ALL SELECT 'truncate' WHERE p.pubtruncate) operations) AS operations,
           marked.comment,
           marked.owned,
           marked."ownedBy",
           marked."markerLine"
    FROM pg_publication p
    CROSS JOIN LATERAL (SELECT obj_description(p.oid, 'pg_publication') AS text OFFSET 0) described
    CROSS JOIN LATERAL ({% include "templates/postgres/ownership.sql" %}) marked
) publications
