{% if "owner" in changed %}
ALTER SCHEMA {{ name|ident }} OWNER TO {{ desired.owner|ident }};
{% endif %}
{% if "comment" in changed %}
COMMENT ON SCHEMA {{ name|ident }} IS {% include "templates/postgres/comment.sql" %};
{% endif %}
