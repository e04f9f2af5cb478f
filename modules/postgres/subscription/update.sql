{% if "publisher" in changed or "password" in changed %}
ALTER SUBSCRIPTION {{ name|ident }} CONNECTION {% include "modules/postgres/subscription/conninfo.sql" %};
{% endif %}
{% if "publications" in changed %}
ALTER SUBSCRIPTION {{ name|ident }} SET PUBLICATION {{ desired.publications|ident_list }};
{% endif %}
{% if "enabled" in changed %}
ALTER SUBSCRIPTION {{ name|ident }} {% if desired.enabled %}ENABLE{% else %}DISABLE{% endif %};
{% endif %}
{% if "comment" in changed %}
COMMENT ON SUBSCRIPTION {{ name|ident }} IS {% include "templates/postgres/comment.sql" %};
{% endif %}
