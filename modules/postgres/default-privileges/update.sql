{# Before the database exists nothing is known: ALL stays the keyword. #}
{% if observed %}
{% set wanted_privileges = observed.allPrivileges if "ALL" in desired.privileges else desired.privileges %}
{% set held = observed.privileges %}
{% else %}
{% set wanted_privileges = desired.privileges %}
{% set held = [] %}
{% endif %}
{% set objects = {"table": "TABLES", "sequence": "SEQUENCES", "function": "FUNCTIONS", "type": "TYPES", "schema": "SCHEMAS"} %}
{% set prefix %}ALTER DEFAULT PRIVILEGES FOR ROLE {{ spec.owner|ident }}{% if spec.schema is defined %} IN SCHEMA {{ spec.schema|ident }}{% endif %}{% endset %}
{% set grantee %}{% if spec.role == "PUBLIC" %}PUBLIC{% else %}{{ spec.role|ident }}{% endif %}{% endset %}
{% set missing = wanted_privileges|reject("in", held)|list %}
{% set extra = held|reject("in", wanted_privileges)|list %}
{% if missing or ("withGrantOption" in changed and desired.withGrantOption) %}
{{ prefix }} GRANT {{ (wanted_privileges if "withGrantOption" in changed and desired.withGrantOption else missing)|keyword_list }} ON {{ [objects[spec.objectType]]|keyword_list }} TO {{ grantee }}{% if desired.withGrantOption %} WITH GRANT OPTION{% endif %};
{% endif %}
{% if extra %}
{{ prefix }} REVOKE {{ extra|keyword_list }} ON {{ [objects[spec.objectType]]|keyword_list }} FROM {{ grantee }};
{% endif %}
{% if "withGrantOption" in changed and not desired.withGrantOption %}
{{ prefix }} REVOKE GRANT OPTION FOR {{ wanted_privileges|keyword_list }} ON {{ [objects[spec.objectType]]|keyword_list }} FROM {{ grantee }};
{% endif %}
