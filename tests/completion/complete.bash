# Ask a bash completion function for its candidates, as bash does at a prompt.
# Usage: bash complete.bash SCRIPT FUNCTION WORD...  (the last word is the one
# being completed); prints one candidate per line.
set -euo pipefail
script=$1 function=$2
shift 2
source "$script"
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
"$function" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
