#compdef @COMMANDS@
# zsh completion for the nodemgr commands. Installed as _nodemgr in a directory of $fpath
# (share/zsh/vendor-completions); compinit reads the line above. The words come from
# `python -m nodemgr.completion`, started only when TAB is pressed, with the interpreter
# named in the command's own #! line (a venv's commands complete from that venv).

local -a lines python
local prog=${commands[${words[1]}]} line=
[[ -n $prog && -r $prog ]] && IFS= read -r line <$prog
if [[ $line == '#!'* ]]; then python=(${(z)line#\#!}); else python=(python3); fi
lines=("${(@f)$("${python[@]}" -m nodemgr.completion zsh $CURRENT "${(Q)words[@]}" 2>/dev/null)}")
case ${lines[1]} in
  files) _files; return ;;
  nospace) (( ${#lines} > 2 )) && compadd -Q -S '' -p "${lines[2]}" -- "${(@)lines[3,-1]}" ;;
  *) (( ${#lines} > 2 )) && compadd -Q -p "${lines[2]}" -- "${(@)lines[3,-1]}" ;;
esac
