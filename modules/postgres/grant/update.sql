{# Per object: grant what the manifest adds, revoke what it does not list.
   Privilege names come from the manifest (schema-checked) or the server and
   go through keyword_list, which only lets capital words through. #}
{% if not observed %}
-- The database does not exist yet: apply grants on the objects it finds there
-- when it reaches this resource (the plan can only show them once it exists).
{% else %}
{% set wanted_privileges = observed.allPrivileges if "ALL" in desired.privileges else desired.privileges %}
{% set grantee %}{% if spec.role == "PUBLIC" %}PUBLIC{% else %}{{ spec.role|ident }}{% endif %}{% endset %}
{% for object, held in observed.acl|items %}
{% if spec.objectType == "database" %}
{% set target_object %}DATABASE {{ object|ident }}{% endset %}
{% elif spec.objectType == "schema" %}
{% set target_object %}SCHEMA {{ object|ident }}{% endset %}
{% elif spec.objectType == "sequence" %}
{% set target_object %}SEQUENCE {{ spec.schema|ident }}.{{ object|ident }}{% endset %}
{% else %}
{% set target_object %}TABLE {{ spec.schema|ident }}.{{ object|ident }}{% endset %}
{% endif %}
{% set missing = wanted_privileges|reject("in", held)|list %}
{% set extra = held|reject("in", wanted_privileges)|list %}
{% if missing or ("withGrantOption" in changed and desired.withGrantOption) %}
GRANT {{ (wanted_privileges if "withGrantOption" in changed and desired.withGrantOption else missing)|keyword_list }} ON {{ target_object }} TO {{ grantee }}{% if desired.withGrantOption %} WITH GRANT OPTION{% endif %};
{% endif %}
{% if extra %}
REVOKE {{ extra|keyword_list }} ON {{ target_object }} FROM {{ grantee }};
{% endif %}
{% if "withGrantOption" in changed and not desired.withGrantOption and wanted_privileges %}
REVOKE GRANT OPTION FOR {{ wanted_privileges|keyword_list }} ON {{ target_object }} FROM {{ grantee }};
{% endif %}
{% endfor %}
{% endif %}
