{# One row per schema of the database, except PostgreSQL's own. #}
SELECT coalesce(json_agg(row_to_json(schemas) ORDER BY schemas.identity), '[]'::json)
FROM (
    SELECT n.nspname AS identity,
           pg_get_userbyid(n.nspowner) AS owner,
           marked.comment,
           marked.owned,
           marked."ownedBy",
           marked."markerLine",
           held.holds
    FROM pg_namespace n
    CROSS JOIN LATERAL (SELECT obj_description(n.oid, 'pg_namespace') AS text OFFSET 0) described
    CROSS JOIN LATERAL ({% include "templates/postgres/ownership.sql" %}) marked
    {# What the schema holds: every object that depends on it by name (tables,
       views, sequences, functions, types, ...), the first 20 by name. Not an
       extension's members, nor extensions themselves: those are the
       extension module's, and DROP SCHEMA without CASCADE refuses a schema
       that still holds one. #}
    CROSS JOIN LATERAL (
        SELECT json_build_object(
                   'count', count(*),
                   'first', coalesce(to_json((array_agg(objects.what ORDER BY objects.what))[1:20]), '[]'::json)
               ) AS holds
        FROM (
            SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS what
            FROM pg_depend d
            WHERE d.refclassid = 'pg_namespace'::regclass
              AND d.refobjid = n.oid
              AND d.deptype = 'n'
              AND d.classid <> 'pg_extension'::regclass
              AND NOT EXISTS (
                  SELECT FROM pg_depend member
                  WHERE member.classid = d.classid AND member.objid = d.objid AND member.deptype = 'e')
        ) objects
    ) held
    WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
      -- fleetform's own ledger (templates/postgres/ledger/prepare.sql)
      AND NOT (n.nspname = 'fleetform' AND obj_description(n.oid, 'pg_namespace') LIKE 'fleetform ledger:%')
) schemas
