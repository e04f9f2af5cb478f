{# The password travels in this statement: keep it out of the server's log. #}
{% if is_superuser %}
SET log_statement = 'none';
SET log_min_duration_statement = -1;
SET log_min_error_statement = 'panic';
{% endif %}
CREATE SUBSCRIPTION {{ name|ident }}
    CONNECTION {% include "modules/postgres/subscription/conninfo.sql" %}

    PUBLICATION {{ desired.publications|ident_list }}
    WITH (enabled = {{ desired.enabled }}, copy_data = {{ desired.copyData }}{% if desired.slotName is defined %}, slot_name = {{ desired.slotName }}{% endif %}{% include "modules/postgres/subscription/options.sql" %});
{% if desired.owner is defined %}
ALTER SUBSCRIPTION {{ name|ident }} OWNER TO {{ desired.owner|ident }};
{% endif %}
COMMENT ON SUBSCRIPTION {{ name|ident }} IS {% include "templates/postgres/comment.sql" %};
