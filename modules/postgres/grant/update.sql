{# Per object: grant what the manifest adds, revoke what it does not list.
   Privilege names come from the manifest (schema-checked) or the server and
   go through keyword_list, which only lets capital words through.
   A prune (the grant left the manifests, or the objects its previous
   definition covered) returns each object no grant of the manifests covers
   (discovery's `covered`) to what the grantee holds by default. #}
{% if not observed %}
-- What it grants on does not exist yet (the database, or objects resources
-- before it create): apply grants on the objects it finds when it reaches
-- this resource (the plan can only show them once they exist).
{% else %}
{% set deleting = action == "delete" %}
{% set grant_option = desired.withGrantOption and not deleting %}
{% set grantee %}{% if spec.role == "PUBLIC" %}PUBLIC{% else %}{{ spec.role|ident }}{% endif %}{% endset %}
{% for object, held in observed.acl|items %}
{% set type = spec.objectType %}
{% if not (deleting and object in (observed.covered | default([]))) %}
{% if deleting %}
{% set wanted_privileges = observed.defaults[object] %}
{% else %}
{% set wanted_privileges = observed.allPrivileges if "ALL" in desired.privileges else desired.privileges %}
{% endif %}
{% if type in ["function", "procedure", "routine"] %}
{% set signature = observed.signatures[object] %}
{% set keyword %}{% if type == "function" %}FUNCTION{% elif type == "procedure" %}PROCEDURE{% else %}ROUTINE{% endif %}{% endset %}
{% set target_object %}{{ keyword }} {{ spec.schema|ident }}.{{ signature.name|ident }}({% for argument in signature.arguments %}{{ argument[0]|ident }}.{{ argument[1]|ident }}{% if not loop.last %}, {% endif %}{% endfor %}){% endset %}
{% elif type == "table" %}
{% set target_object %}TABLE {{ spec.schema|ident }}.{{ object|ident }}{% endset %}
{% elif type == "sequence" %}
{% set target_object %}SEQUENCE {{ spec.schema|ident }}.{{ object|ident }}{% endset %}
{% elif type == "type" %}
{% set target_object %}TYPE {{ spec.schema|ident }}.{{ object|ident }}{% endset %}
{% elif type == "database" %}
{% set target_object %}DATABASE {{ object|ident }}{% endset %}
{% elif type == "schema" %}
{% set target_object %}SCHEMA {{ object|ident }}{% endset %}
{% elif type == "language" %}
{% set target_object %}LANGUAGE {{ object|ident }}{% endset %}
{% elif type == "foreignDataWrapper" %}
{% set target_object %}FOREIGN DATA WRAPPER {{ object|ident }}{% endset %}
{% elif type == "foreignServer" %}
{% set target_object %}FOREIGN SERVER {{ object|ident }}{% endset %}
{% elif type == "largeObject" %}
{% set target_object %}LARGE OBJECT {{ object|int }}{% endset %}
{% elif type == "parameter" %}
{% set target_object %}PARAMETER {{ object|ident_path }}{% endset %}
{% elif type == "tablespace" %}
{% set target_object %}TABLESPACE {{ object|ident }}{% endset %}
{% endif %}
{% set missing = wanted_privileges|reject("in", held)|list %}
{% set extra = held|reject("in", wanted_privileges)|list %}
{% if missing or ("withGrantOption" in changed and grant_option) %}
GRANT {{ (wanted_privileges if "withGrantOption" in changed and grant_option else missing)|keyword_list }} ON {{ target_object }} TO {{ grantee }}{% if grant_option %} WITH GRANT OPTION{% endif %};
{% endif %}
{% if extra %}
REVOKE {{ extra|keyword_list }} ON {{ target_object }} FROM {{ grantee }};
{% endif %}
{% if "withGrantOption" in changed and not grant_option and wanted_privileges %}
REVOKE GRANT OPTION FOR {{ wanted_privileges|keyword_list }} ON {{ target_object }} FROM {{ grantee }};
{% endif %}
{% endif %}
{% endfor %}
{% endif %}
