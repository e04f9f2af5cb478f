{# Every subscription of the database, its connection string taken apart.
   The password stays in memory: the module marks it sensitive. #}
SELECT coalesce(json_agg(row_to_json(subscriptions) ORDER BY subscriptions.identity), '[]'::json)
FROM (
    SELECT s.subname AS identity,
           json_strip_nulls(json_build_object(
               'host', parts.host,
               'port', CASE WHEN parts.port ~ '^[0-9]{1,5}$' THEN parts.port::int END,
               'database', parts.dbname,
               'user', parts.username,
               'sslMode', parts.sslmode
           )) AS publisher,
           parts.password,
           {{ is_superuser }} AS "passwordReadable",
           to_json(s.subpublications) AS publications,
           s.subenabled AS enabled,
           s.subslotname AS "slotName",
           marked.comment,
           marked.owned,
           marked."ownedBy",
           marked."markerLine"
    FROM pg_subscription s
    CROSS JOIN LATERAL (
{% include "modules/postgres/subscription/conninfo_parts.sql" %}
    ) parts
    CROSS JOIN LATERAL (SELECT obj_description(s.oid, 'pg_subscription') AS text OFFSET 0) described
    CROSS JOIN LATERAL ({% include "templates/postgres/ownership.sql" %}) marked
    WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
) subscriptions
