{# Splits `described.text` (an object's comment) into the comment a person
   wrote and fleetform's ownership marker, the comment's last line, which
   names the environment that created the object:
   `owned`      the marker names this environment (what --prune may delete);
   `ownedBy`    the environment a marker names, '' for a marker written
                before markers named one, NULL without a marker;
   `markerLine` the marker as it stands, kept when the comment is rewritten. #}
SELECT CASE WHEN found.line IS NULL THEN described.text
            WHEN length(described.text) = length(found.line) THEN NULL
            ELSE left(described.text, length(described.text) - length(found.line) - 1) END AS comment,
       coalesce(found.line = {{ marker }}, false) AS owned,
       found.owner AS "ownedBy",
       found.line AS "markerLine"
FROM (SELECT matched.parts[1] AS line,
             CASE WHEN matched.parts IS NULL THEN NULL ELSE coalesce(matched.parts[3], '') END AS owner
      FROM (SELECT regexp_match(described.text,
                                '(?:^|\n)(\[managed by fleetform(: environment ([^\n]*))?\])$') AS parts) matched
     ) found
