{% if "tables" in changed %}
{% for table in set_changes.tables.added %}
ALTER PUBLICATION {{ name|ident }} ADD TABLE {% if table is mapping %}{{ table.schema|ident }}.{{ table.table|ident }}{% else %}{{ table|ident_path }}{% endif %};
{% endfor %}
{% for table in set_changes.tables.removed %}
ALTER PUBLICATION {{ name|ident }} DROP TABLE {% if table is mapping %}{{ table.schema|ident }}.{{ table.table|ident }}{% else %}{{ table|ident_path }}{% endif %};
{% endfor %}
{% endif %}
{% if "operations" in changed %}
ALTER PUBLICATION {{ name|ident }} SET (publish = {{ desired.operations|join(", ") }});
{% endif %}
{% if "comment" in changed %}
COMMENT ON PUBLICATION {{ name|ident }} IS {% include "templates/postgres/comment.sql" %};
{% endif %}
