{# With --prune, for a resource that left the manifests: its own `unset`
   script, while the test still says the state is there (nothing otherwise,
   so that a resource without `unset`, or already undone, is left alone). #}
{% if spec.unset is defined and observed and observed.inDesiredState %}
{{ spec.unset }}
{% endif %}
