{# Before the database exists nothing is known: ALL stays the keyword.
   A prune (the resource left the manifests) returns to the defaults, unless
   another resource of the manifests now manages the same default ACL. #}
{% set deleting = action == "delete" %}
{% set grant_option = desired.withGrantOption and not deleting %}
{% set scope = namespace(covered=false) %}
{% for other in others | default([]) if deleting and other.owner == spec.owner and other.role == spec.role
                                        and other.objectType == spec.objectType
                                        and other.schema | default(none) == spec.schema | default(none) %}
{% set scope.covered = true %}
{% endfor %}
{% if scope.covered %}
{% elif observed %}
{% set wanted_privileges = observed.defaults if deleting else observed.allPrivileges if "ALL" in desired.privileges else desired.privileges %}
{% set held = observed.privileges %}
{% else %}
{% set wanted_privileges = desired.privileges %}
{% set held = [] %}
{% endif %}
{% set objects = {"table": "TABLES", "sequence": "SEQUENCES", "function": "FUNCTIONS", "type": "TYPES", "schema": "SCHEMAS"} %}
{% set prefix %}ALTER DEFAULT PRIVILEGES FOR ROLE {{ spec.owner|ident }}{% if spec.schema is defined %} IN SCHEMA {{ spec.schema|ident }}{% endif %}{% endset %}
{% set grantee %}{% if spec.role == "PUBLIC" %}PUBLIC{% else %}{{ spec.role|ident }}{% endif %}{% endset %}
{% if not scope.covered %}
{% set missing = wanted_privileges|reject("in", held)|list %}
{% set extra = held|reject("in", wanted_privileges)|list %}
{% if missing or ("withGrantOption" in changed and grant_option) %}
{{ prefix }} GRANT {{ (wanted_privileges if "withGrantOption" in changed and grant_option else missing)|keyword_list }} ON {{ [objects[spec.objectType]]|keyword_list }} TO {{ grantee }}{% if grant_option %} WITH GRANT OPTION{% endif %};
{% endif %}
{% if extra %}
{{ prefix }} REVOKE {{ extra|keyword_list }} ON {{ [objects[spec.objectType]]|keyword_list }} FROM {{ grantee }};
{% endif %}
{% if "withGrantOption" in changed and not grant_option %}
{{ prefix }} REVOKE GRANT OPTION FOR {{ wanted_privileges|keyword_list }} ON {{ [objects[spec.objectType]]|keyword_list }} FROM {{ grantee }};
{% endif %}
{% endif %}
