{# Secrets travel in these statements: keep them out of the server's log. #}
{% if is_superuser %}
SET log_statement = 'none';
SET log_min_duration_statement = -1;
SET log_min_error_statement = 'panic';
{% endif %}
{% if "enabled" in changed and desired.enabled %}
ALTER SUBSCRIPTION {{ name|ident }} ENABLE;
{% endif %}
{% if "publisher" in changed or "password" in changed %}
ALTER SUBSCRIPTION {{ name|ident }} CONNECTION {% include "modules/postgres/subscription/conninfo.sql" %};
{% endif %}
{% if "publications" in changed %}
{# A disabled subscription cannot refresh. #}
ALTER SUBSCRIPTION {{ name|ident }} SET PUBLICATION {{ desired.publications|ident_list }} WITH (refresh = {{ desired.enabled }});
{% endif %}
{% if "enabled" in changed and not desired.enabled %}
ALTER SUBSCRIPTION {{ name|ident }} DISABLE;
{% endif %}
{% set options = ["synchronousCommit", "binary", "streaming", "disableOnError", "origin"]|select("in", changed)|list %}
{% if options %}
ALTER SUBSCRIPTION {{ name|ident }} SET ({% include "modules/postgres/subscription/options.sql" %});
{% endif %}
{% if "owner" in changed %}
ALTER SUBSCRIPTION {{ name|ident }} OWNER TO {{ desired.owner|ident }};
{% endif %}
{% if "refresh" in changed %}
ALTER SUBSCRIPTION {{ name|ident }} REFRESH PUBLICATION;
{% endif %}
{% if "comment" in changed %}
COMMENT ON SUBSCRIPTION {{ name|ident }} IS {% include "templates/postgres/comment.sql" %};
{% endif %}
