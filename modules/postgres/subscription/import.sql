{# Every subscription of the database, as a manifest spec. The password is
   never written: the spec reads it from an environment variable named after
   the subscription, which the operator sets. Without superuser the
   connection string cannot be read, so nothing is imported. #}
{% if is_superuser %}
SELECT coalesce(json_agg(json_build_object('name', s.subname, 'spec', json_strip_nulls(json_build_object(
           'name', s.subname,
           'publisher', json_build_object(
               'host', parts.host,
               'port', CASE WHEN parts.port ~ '^[0-9]{1,5}$' THEN parts.port::int END,
               'database', parts.dbname,
               'user', parts.username,
               'sslMode', parts.sslmode),
           'password', CASE WHEN parts.password IS NOT NULL THEN json_build_object('fromEnv',
               'PG_SUBSCRIPTION_' || upper(trim(both '_' from regexp_replace(s.subname, '[^A-Za-z0-9]+', '_', 'g'))) || '_PASSWORD') END,
           'publications', to_json(s.subpublications),
           'enabled', s.subenabled,
           'slotName', s.subslotname,
           'comment', marked.comment
       ))) ORDER BY s.subname), '[]'::json)
FROM pg_subscription s
CROSS JOIN LATERAL (
{% include "modules/postgres/subscription/conninfo_parts.sql" %}
) parts
CROSS JOIN LATERAL (SELECT obj_description(s.oid, 'pg_subscription') AS text OFFSET 0) described
CROSS JOIN LATERAL ({% include "templates/postgres/ownership.sql" %}) marked
WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
{% else %}
SELECT '[]'::json
{% endif %}
