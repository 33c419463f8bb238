# bash completion for ensemblectl                                 -*- shell-script -*-
# Commands, subcommands and options as in `ensemblectl --help`; agent names and
# session ids are asked of the running daemon.

_ensemblectl_commands="health plugins ping shutdown top publish subscribe agents request kv complete route
providers budget sessions session mcp chat pipe help"
_ensemblectl_options="--socket --socket-dir --json --timeout --to --model --provider --stream --interval
--iterations --once --tools --help --version"

# The daemon's answer for one listing, as words (empty when it does not run).
_ensemblectl_ask()
{
    local socket=() i
    for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
        case ${COMP_WORDS[i]} in
            --socket | --socket-dir) socket=("${COMP_WORDS[i]}" "${COMP_WORDS[i + 1]}") ;;
            --socket=* | --socket-dir=*) socket=("${COMP_WORDS[i]}") ;;
        esac
    done
    "${COMP_WORDS[0]}" "${socket[@]}" --timeout 2000 --json "$1" 2>/dev/null |
        tr ',{}[]' '\n\n\n\n\n' | sed -n "s/^\"$2\":\"\\([^\"]*\\)\"\$/\\1/p"
}

_ensemblectl()
{
    local cur prev words=() i cmd="" sub=""
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    COMPREPLY=()

    case $prev in
        --socket)
            COMPREPLY=($(compgen -f -- "$cur"))
            return
            ;;
        --socket-dir)
            COMPREPLY=($(compgen -d -- "$cur"))
            return
            ;;
        --timeout | --to | --model | --provider | --interval | --iterations | --tools)
            return
            ;;
    esac

    # The words before the cursor that are not options or their values.
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --socket | --socket-dir | --timeout | --to | --model | --provider | --interval | --iterations | --tools)
                ((i++))
                ;;
            -*) ;;
            *) words+=("${COMP_WORDS[i]}") ;;
        esac
    done
    cmd=${words[0]}
    sub=${words[1]}

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$_ensemblectl_options" -- "$cur"))
        return
    fi
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$_ensemblectl_commands" -- "$cur"))
        return
    fi
    case $cmd in
        kv)
            [[ ${#words[@]} -eq 1 ]] && COMPREPLY=($(compgen -W "get set del delete list" -- "$cur"))
            [[ ${#words[@]} -eq 2 ]] && COMPREPLY=($(compgen -W "$(_ensemblectl_ask agents name)" -- "$cur"))
            ;;
        session)
            if [[ ${#words[@]} -eq 1 ]]; then
                COMPREPLY=($(compgen -W "spawn exec status stop" -- "$cur"))
            elif [[ ${#words[@]} -eq 2 && $sub != spawn ]]; then
                COMPREPLY=($(compgen -W "$(_ensemblectl_ask sessions session_id)" -- "$cur"))
            fi
            ;;
        chat)
            [[ ${#words[@]} -eq 1 ]] && COMPREPLY=($(compgen -W "$(_ensemblectl_ask sessions session_id)" -- "$cur"))
            ;;
        request)
            [[ ${#words[@]} -eq 1 ]] && COMPREPLY=($(compgen -W "$(_ensemblectl_ask agents name)" -- "$cur"))
            ;;
        pipe)
            COMPREPLY=($(compgen -W "$(_ensemblectl_ask agents name) @" -- "$cur"))
            ;;
        help)
            [[ ${#words[@]} -eq 1 ]] && COMPREPLY=($(compgen -W "$_ensemblectl_commands" -- "$cur"))
            [[ ${#words[@]} -eq 2 && $sub == kv ]] && COMPREPLY=($(compgen -W "get set del list" -- "$cur"))
            [[ ${#words[@]} -eq 2 && $sub == session ]] && COMPREPLY=($(compgen -W "spawn exec status stop" -- "$cur"))
            ;;
    esac
}

complete -F _ensemblectl ensemblectl
