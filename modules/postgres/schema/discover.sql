{# One row per schema of the database, except PostgreSQL's own. #}
SELECT coalesce(json_agg(row_to_json(schemas) ORDER BY schemas.identity), '[]'::json)
FROM (
    SELECT n.nspname AS identity,
           pg_get_userbyid(n.nspowner) AS owner,
           marked.comment,
           marked.owned,
           marked."ownedBy",
           marked."markerLine"
    FROM pg_namespace n
    CROSS JOIN LATERAL (SELECT obj_description(n.oid, 'pg_namespace') AS text) described
    CROSS JOIN LATERAL ({% include "templates/postgres/ownership.sql" %}) marked
    WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
      -- fleetform's own ledger (templates/postgres/ledger/prepare.sql)
      AND NOT (n.nspname = 'fleetform' AND obj_description(n.oid, 'pg_namespace') LIKE 'fleetform ledger:%')
) schemas
