{# A shell has no session settings: each script is its own process and
   bounds its own waits (lock_wait.sh). #}
:
