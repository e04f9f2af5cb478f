{# Splits `described.text` (an object's comment) into the comment a person
   wrote and fleetform's ownership marker, the comment's last line, which
   names the environment that created the object:
   `owned`      the marker names this environment (what --prune may delete);
   `ownedBy`    the environment a marker names, '' for a marker written
                before markers named one, NULL without a marker;
   `markerLine` the marker as it stands, kept when the comment is rewritten.
   String functions, not a regular expression, and OFFSET 0 on each step
   (here, and on the `described` subquery of every module that includes
   this): PostgreSQL would otherwise pull the subqueries up and evaluate
   the comment and its last line once per reference, which made role
   discovery six times slower. #}
SELECT CASE WHEN found.line IS NULL THEN described.text
            WHEN length(described.text) = length(found.line) THEN NULL
            ELSE left(described.text, length(described.text) - length(found.line) - 1) END AS comment,
       coalesce(found.line = {{ marker }}, false) AS owned,
       CASE WHEN found.line IS NULL THEN NULL
            WHEN found.line = '[managed by fleetform]' THEN ''
            {# After `[managed by fleetform: environment ` (35 characters), before the closing bracket. #}
            ELSE substr(found.line, 36, length(found.line) - 36) END AS "ownedBy",
       found.line AS "markerLine"
FROM (SELECT CASE WHEN last.line = '[managed by fleetform]'
                    OR last.line LIKE '[managed by fleetform: environment %]' THEN last.line END AS line
      FROM (SELECT CASE WHEN strpos(described.text, E'\n') = 0 THEN described.text
                        ELSE right(described.text, strpos(reverse(described.text), E'\n') - 1) END AS line
            OFFSET 0) last
      OFFSET 0) found
