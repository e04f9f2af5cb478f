{# Splits `described.text` (an object's comment) into the comment a person
   wrote and fleetform's ownership marker, which is the comment's last line. #}
SELECT CASE WHEN described.text = {{ marker }} THEN NULL
            WHEN right(described.text, length({{ marker }}) + 1) = E'\n' || {{ marker }}
                THEN left(described.text, length(described.text) - length({{ marker }}) - 1)
            ELSE described.text END AS comment,
       coalesce(described.text = {{ marker }}
                OR right(described.text, length({{ marker }}) + 1) = E'\n' || {{ marker }}, false) AS owned
