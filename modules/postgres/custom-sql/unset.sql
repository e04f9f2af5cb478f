{# With --prune, for a resource that left the manifests: its own `unset`
   script, while the test still says the state is there, and unless a
   resource of the manifests has the same test (the same resource under a
   new name). #}
{% set kept = namespace(by_other=false) %}
{% for other in others | default([]) if other.test == spec.test %}
{% set kept.by_other = true %}
{% endfor %}
{% if spec.unset is defined and observed and observed.inDesiredState and not kept.by_other %}
{{ spec.unset }}
{% endif %}
