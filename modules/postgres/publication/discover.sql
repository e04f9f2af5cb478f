{# Every publication of the database. #}
SELECT coalesce(json_agg(row_to_json(publications) ORDER BY publications.identity), '[]'::json)
FROM (
    SELECT p.pubname AS identity,
           p.puballtables AS "allTables",
           coalesce((SELECT json_agg(t.schemaname || '.' || t.tablename ORDER BY t.schemaname, t.tablename)
                     FROM pg_publication_tables t WHERE t.pubname = p.pubname), '[]'::json) AS tables,
           (SELECT json_agg(operation ORDER BY operation) FROM (
                SELECT 'insert' AS operation WHERE p.pubinsert
                UNION ALL SELECT 'update' WHERE p.pubupdate
                UNION ALL SELECT 'delete' WHERE p.pubdelete
                UNION ALL SELECT 'truncate' WHERE p.pubtruncate) operations) AS operations,
           marked.comment,
           marked.owned
    FROM pg_publication p
    CROSS JOIN LATERAL (SELECT obj_description(p.oid, 'pg_publication') AS text) described
    CROSS JOIN LATERAL ({% include "templates/postgres/ownership.sql" %}) marked
) publications
