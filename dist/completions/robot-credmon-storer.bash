_robot__credmon__storer() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="robot__credmon__storer"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        robot__credmon__storer)
            opts="-v -d -k -h -V --verbose --debug --keytab --vaulttokendir --restore-before --credd --web-open-command --oidc-timeout --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --keytab)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -k)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --vaulttokendir)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --restore-before)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --credd)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --web-open-command)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --oidc-timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _robot__credmon__storer -o nosort -o bashdefault -o default robot-credmon-storer
else
    complete -F _robot__credmon__storer -o bashdefault -o default robot-credmon-storer
fi
