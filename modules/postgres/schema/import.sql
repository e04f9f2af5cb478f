{# Every schema of the database but PostgreSQL's own, as a manifest spec. #}
SELECT coalesce(json_agg(json_build_object('name', n.nspname, 'spec', json_strip_nulls(json_build_object(
           'name', n.nspname,
           'owner', pg_get_userbyid(n.nspowner),
           'comment', marked.comment
       ))) ORDER BY n.nspname), '[]'::json)
FROM pg_namespace n
CROSS JOIN LATERAL (SELECT obj_description(n.oid, 'pg_namespace') AS text OFFSET 0) described
CROSS JOIN LATERAL ({% include "templates/postgres/ownership.sql" %}) marked
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
      -- fleetform's own ledger (templates/postgres/ledger/prepare.sql)
      AND NOT (n.nspname = 'fleetform' AND obj_description(n.oid, 'pg_namespace') LIKE 'fleetform ledger:%')
