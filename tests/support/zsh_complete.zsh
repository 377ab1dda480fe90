#!/bin/zsh -f
# Prints what zsh completion offers for a command line, one candidate a line:
#   zsh -f zsh_complete.zsh FPATH_DIR 'robot-credmon get --vau'
# An interactive zsh in a pseudo-terminal (zsh/zpty) loads the completion
# functions from FPATH_DIR; compadd is wrapped to print each candidate and <TAB> is sent.
# compinit gets -D and no -d: a -d after -D turns dumping back on, and zsh then
# renames its dump over the named file (as root, `-d /dev/null` replaced the device).
zmodload zsh/zpty || exit 2
zpty z zsh -f -i
zpty -w z "fpath=($1 \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z "bindkey '^I' complete-word"
zpty -w z "null-line () { echo -E - \$'\\0' }"
zpty -w z 'compprefuncs=( null-line ); comppostfuncs=( null-line exit )'
zpty -w z "zstyle ':completion:*' list-grouped false; zstyle ':completion:*' insert-tab false"
zpty -w z 'compadd () {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  typeset -a __hits __dscr __tmp
  if (( $@[(I)-d] )); then __tmp=${@[$[${@[(i)-d]}+1]]}; if [[ $__tmp == \(* ]]; then eval "__dscr=$__tmp"; else __dscr=( "${(@P)__tmp}" ); fi; fi
  builtin compadd -A __hits -D __dscr "$@"
  setopt localoptions norcexpandparam extendedglob
  typeset -A apre hpre hsuf asuf
  zparseopts -E P:=apre p:=hpre S:=asuf s:=hsuf
  local i; for i in {1..$#__hits}; do echo -E - "<c>${__hits[$i]}"; done
}'
zpty -w z "$2"$'\t'
integer tog=0
local line
while zpty -r z line; do
  [[ $line == *$'\0\r' ]] && (( tog++ )) && [[ $tog -ge 2 ]] && break
  [[ $line == '<c>'* ]] && print -r -- "${${line#<c>}%$'\r'}"
done
zpty -d z
