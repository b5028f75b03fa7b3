# bash completion for the nodemgr commands (nodels, rpower, tabdump, ...).
# Installed as share/bash-completion/completions/nodemgr with a link to it for every
# command, so bash-completion loads it on the first TAB after one of them; or source it
# from ~/.bashrc. It asks `python -m nodemgr.completion` for the words, only when TAB is
# pressed, with the interpreter named in the command's own #! line (so a venv's commands
# complete from that venv); the commands themselves never load anything for completion.

# The interpreter of command $1 (its #! line), else python3.
_nodemgr_python()
{
    local prog line
    prog=$(type -P -- "$1") && IFS= read -r line <"$prog" 2>/dev/null && [[ $line == '#!'* ]] \
        && { printf '%s\n' "${line#\#!}"; return; }
    printf 'python3\n'
}

_nodemgr_complete()
{
    local -a lines
    local -a python
    IFS=' ' read -r -a python <<<"$(_nodemgr_python "${COMP_WORDS[0]}")"
    mapfile -t lines < <("${python[@]}" -m nodemgr.completion bash "$COMP_WORDBREAKS" "${COMP_LINE:0:COMP_POINT}" 2>/dev/null)
    COMPREPLY=()
    case ${lines[0]-} in
        files) compopt -o default 2>/dev/null; return 0 ;;
        nospace) compopt -o nospace 2>/dev/null ;;
    esac
    [[ ${#lines[@]} -gt 2 ]] && COMPREPLY=("${lines[@]:2}")
    return 0
}

complete -F _nodemgr_complete @COMMANDS@
