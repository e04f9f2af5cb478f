{# Tables and schemas leaving the publication go first: a table whose column
   list changes leaves and comes back with the new list, in one transaction. #}
{% if "tables" in changed %}
{% for table in set_changes.tables.removed %}
ALTER PUBLICATION {{ name|ident }} DROP TABLE {% if table is mapping %}{{ table.schema|ident }}.{{ table.table|ident }}{% else %}{{ table|ident_path }}{% endif %};
{% endfor %}
{% endif %}
{% if "schemas" in changed and set_changes.schemas.removed %}
ALTER PUBLICATION {{ name|ident }} DROP TABLES IN SCHEMA {{ set_changes.schemas.removed|ident_list }};
{% endif %}
{% if "tables" in changed %}
{% for table in set_changes.tables.added %}
ALTER PUBLICATION {{ name|ident }} ADD TABLE {% include "modules/postgres/publication/table.sql" %};
{% endfor %}
{% endif %}
{% if "schemas" in changed and set_changes.schemas.added %}
ALTER PUBLICATION {{ name|ident }} ADD TABLES IN SCHEMA {{ set_changes.schemas.added|ident_list }};
{% endif %}
{% if "operations" in changed or "publishViaPartitionRoot" in changed %}
ALTER PUBLICATION {{ name|ident }} SET (publish = {{ desired.operations|join(", ") }}, publish_via_partition_root = {{ desired.publishViaPartitionRoot }});
{% endif %}
{% if "owner" in changed %}
ALTER PUBLICATION {{ name|ident }} OWNER TO {{ desired.owner|ident }};
{% endif %}
{% if "comment" in changed %}
COMMENT ON PUBLICATION {{ name|ident }} IS {% include "templates/postgres/comment.sql" %};
{% endif %}
