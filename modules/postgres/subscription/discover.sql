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
               'sslMode', parts.sslmode,
               'connectTimeout', CASE WHEN parts.connect_timeout ~ '^[0-9]{1,9}$' THEN parts.connect_timeout::int END,
               'applicationName', parts.application_name
           )) AS publisher,
           parts.password,
           {{ is_superuser }} AS "passwordReadable",
           to_json(s.subpublications) AS publications,
           s.subenabled AS enabled,
           s.subslotname AS "slotName",
           pg_get_userbyid(s.subowner) AS owner,
           s.subsynccommit AS "synchronousCommit",
{% if server_version_num >= 140000 %}
           s.subbinary AS binary,
{% endif %}
{% if server_version_num >= 160000 %}
           CASE s.substream WHEN 'f' THEN 'off' WHEN 't' THEN 'on' WHEN 'p' THEN 'parallel' END AS streaming,
           s.suborigin AS origin,
{% else %}
           CASE WHEN s.substream THEN 'on' ELSE 'off' END AS streaming,
{% endif %}
{% if server_version_num >= 150000 %}
           s.subdisableonerr AS "disableOnError",
{% endif %}
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
