{% if "version" in changed %}
ALTER EXTENSION {{ name|ident }} UPDATE TO {{ desired.version }};
{% endif %}
{% if "schema" in changed %}
{# Only relocatable extensions can move; PostgreSQL refuses the others. #}
ALTER EXTENSION {{ name|ident }} SET SCHEMA {{ desired.schema|ident }};
{% endif %}
{% if "comment" in changed %}
COMMENT ON EXTENSION {{ name|ident }} IS {% include "templates/postgres/comment.sql" %};
{% endif %}
