{% if "owner" in changed %}
ALTER DATABASE {{ name|ident }} OWNER TO {{ desired.owner|ident }};
{% endif %}
{% if "tablespace" in changed %}
ALTER DATABASE {{ name|ident }} SET TABLESPACE {{ desired.tablespace|ident }};
{% endif %}
{% if "connectionLimit" in changed or "allowConnections" in changed or "isTemplate" in changed %}
ALTER DATABASE {{ name|ident }} WITH
    ALLOW_CONNECTIONS {{ desired.allowConnections }}
    CONNECTION LIMIT {{ desired.connectionLimit }}
    IS_TEMPLATE {{ desired.isTemplate }};
{% endif %}
{% if "comment" in changed %}
COMMENT ON DATABASE {{ name|ident }} IS {% include "templates/postgres/comment.sql" %};
{% endif %}
