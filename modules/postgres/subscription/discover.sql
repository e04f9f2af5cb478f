{# Every subscription of the database, its connection string taken apart
   (fleetform writes each value quoted, key='value', with \ and ' escaped).
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
           marked.owned
    FROM pg_subscription s
    CROSS JOIN LATERAL (
{% if is_superuser %}
        SELECT {% for key, column in [("host", "host"), ("port", "port"), ("dbname", "dbname"), ("user", "username"), ("sslmode", "sslmode"), ("password", "password")] %}
               regexp_replace((regexp_match(s.subconninfo, {{ "(?:^| )" ~ key ~ "='((?:[^'\\\\]|\\\\.)*)'" }}))[1], '\\(.)', '\1', 'g') AS {{ column|ident }}{% if not loop.last %},{% endif %}

               {% endfor %}
{% else %}
        {# The connection string is readable by superusers only. #}
        SELECT NULL AS host, NULL AS port, NULL AS dbname, NULL AS username, NULL AS sslmode, NULL AS password
{% endif %}
    ) parts
    CROSS JOIN LATERAL (SELECT obj_description(s.oid, 'pg_subscription') AS text) described
    CROSS JOIN LATERAL ({% include "templates/postgres/ownership.sql" %}) marked
    WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
) subscriptions
